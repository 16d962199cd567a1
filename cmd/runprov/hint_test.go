package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// hintLines returns the lines of stderr that are hints.
func hintLines(stderr string) []string {
	var hints []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "hint:") {
			hints = append(hints, l)
		}
	}
	return hints
}

func TestHintImageInspectMissingOnce(t *testing.T) {
	store := newCLIStore(t)
	for _, d := range []string{"sha256:abcd", "sha256:" + strings.Repeat("ab", 32)} {
		_, errs := mustCLI(t, exitRunprov, store, "image", "inspect", d)
		if h := hintLines(errs); len(h) != 1 || !strings.Contains(h[0], "runprov image import PATH") {
			t.Errorf("image inspect %s: want one import hint, stderr:\n%s", d, errs)
		}
	}
}

func TestHintFsckDoesNotSuggestFsck(t *testing.T) {
	store, hashes := fsckStore(t)
	db := storeDB(t, store)
	mustExec(t, db, "UPDATE commits SET blob = ? WHERE hash = ?", strings.Repeat("12", 20), hashes[1])
	db.Close()
	_, errs := mustCLI(t, exitRunprov, store, "fsck")
	if h := hintLines(errs); len(h) != 0 {
		t.Errorf("fsck on a corrupt store printed hints:\n%s", errs)
	}
}

// TestHintsAtMostOnce runs failing commands of several kinds; none may print
// more than one hint, nor a hint to run the command that failed.
func TestHintsAtMostOnce(t *testing.T) {
	idx, host := cliTestIndex(t)
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	store, hashes := fsckStore(t)
	mustCLI(t, 0, store, "image", "import", dir)
	db := storeDB(t, store)
	mustExec(t, db, "UPDATE commits SET blob = ? WHERE hash = ?", strings.Repeat("12", 20), hashes[1])
	db.Close()
	// A changed layer: image verify finds it, a store corruption.
	layers, _ := host.Layers()
	ld, _ := layers[0].Digest()
	blob := filepath.Join(store, "images", "blobs", "sha256", ld.Hex)
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A missing config blob: inspect finds it, a store corruption too.
	cfg, _ := host.ConfigName()
	if err := os.Remove(filepath.Join(store, "images", "blobs", "sha256", cfg.Hex)); err != nil {
		t.Fatal(err)
	}
	missing := "sha256:" + strings.Repeat("cd", 32)
	noStore := filepath.Join(t.TempDir(), "none")
	for _, c := range []struct {
		store string
		args  []string
		hint  string // the hint it must print, if any
	}{
		{store, []string{"fsck"}, ""},
		{store, []string{"image", "verify", digest(t, idx)}, "remove the image"},
		{store, []string{"image", "inspect", digest(t, host)}, "run: runprov fsck"},
		{store, []string{"image", "inspect", missing}, "runprov image import PATH"},
		{store, []string{"image", "verify", missing}, "runprov image import PATH"},
		{store, []string{"image", "approve", missing}, "runprov image import PATH"},
		{store, []string{"image", "rm", missing}, "runprov image import PATH"},
		{store, []string{"run", "0000000"}, ""},
		{store, []string{"cat", "0000000"}, ""},
		{store, []string{"query", "delete from runs"}, ""},
		{noStore, []string{"runs"}, "runprov init"},
		{noStore, []string{"fsck"}, "runprov init"},
	} {
		_, errs, code := cli(t, c.store, c.args...)
		if code == 0 {
			t.Errorf("runprov %s: exit 0, want a failure", strings.Join(c.args, " "))
			continue
		}
		h := hintLines(errs)
		if len(h) > 1 || strings.Count(errs, "runprov fsck") > 1 {
			t.Errorf("runprov %s: said more than once what to do:\n%s", strings.Join(c.args, " "), errs)
		}
		if c.hint != "" && (len(h) == 0 || !strings.Contains(h[0], c.hint)) {
			t.Errorf("runprov %s: want hint %q:\n%s", strings.Join(c.args, " "), c.hint, errs)
		}
		self := "runprov " + strings.Join(c.args, " ")
		for _, l := range h {
			if strings.Contains(l, self) {
				t.Errorf("runprov %s: hint to run itself:\n%s", strings.Join(c.args, " "), errs)
			}
		}
	}
}
