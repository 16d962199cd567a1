package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runprov/runprov/core"
)

// otherArch is an architecture that is not the host's.
func otherArch() string {
	if hostArch() == "s390x" {
		return "ppc64le"
	}
	return "s390x"
}

// busyboxIndexLayout writes an OCI layout holding a two-platform index: the
// busybox image for the host and a copy of it labelled for otherArch. It
// returns the layout directory and the digests of the index, the host's
// manifest and the other manifest.
func busyboxIndexLayout(t *testing.T) (dir, idxD, hostD, otherD string) {
	t.Helper()
	lay, hostD := busyboxLayout(t)
	p, err := layout.FromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	h, err := v1.NewHash(hostD)
	if err != nil {
		t.Fatal(err)
	}
	host, err := p.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := host.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = otherArch()
	other, err := mutate.ConfigFile(host, cf)
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: otherArch()}}},
		mutate.IndexAddendum{Add: host, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: hostArch()}}},
	)
	dir = filepath.Join(t.TempDir(), "index-layout")
	out, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	return dir, digest(t, idx), hostD, digest(t, other)
}

// TestRunFromIndexDigest: a Runfile whose FROM pins an image index runs the
// host platform's manifest (listed second in the index, so taking the first
// one is caught), and the run record has both digests. FROM --platform
// naming a platform the index lacks is refused before anything runs.
func TestRunFromIndexDigest(t *testing.T) {
	requireRunc(t)
	lay, idxD, hostD, otherD := busyboxIndexLayout(t)
	if idxD == hostD || hostD == otherD {
		t.Fatalf("index %s, host %s, other %s are not distinct", idxD, hostD, otherD)
	}
	store := newCLIStore(t)
	out, _ := mustCLI(t, 0, store, "image", "import", lay)
	if !strings.Contains(out, idxD) || !strings.Contains(out, hostD) || !strings.Contains(out, otherD) {
		t.Fatalf("import printed:\n%s", out)
	}
	t.Cleanup(func() { checkNoContainers(t, store) })

	add := func(runfile string) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "Runfile")
		if err := os.WriteFile(p, []byte(runfile), 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := mustCLI(t, 0, store, "add", p)
		return strings.TrimSpace(out)
	}
	commit := add("FROM busybox@" + idxD + "\nCMD [\"/bin/sh\", \"-c\", \"echo from-index\"]\n")
	out, errs, code := cli(t, store, "--json", "run", commit, "--no-input")
	var r core.Run
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("run of FROM index: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(errs, "from-index") {
		t.Errorf("container output not streamed:\n%s", errs)
	}
	out, _ = mustCLI(t, 0, store, "--json", "show", r.ID)
	var shown map[string]any
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	if shown["index_digest"] != idxD || shown["image_digest"] != hostD {
		t.Errorf("show --json: index_digest %v image_digest %v, want %s and %s (host %s)",
			shown["index_digest"], shown["image_digest"], idxD, hostD, hostArch())
	}
	q, _ := mustCLI(t, 0, store, "query", "--csv", "SELECT image_digest, index_digest FROM runs WHERE id = '"+r.ID+"'")
	if !strings.Contains(q, hostD+","+idxD) {
		t.Errorf("stored row:\n%s", q)
	}

	// --platform naming the host picks the same manifest.
	commit = add("FROM --platform=linux/" + hostArch() + " busybox@" + idxD + "\nCMD [\"/bin/true\"]\n")
	out, errs, code = cli(t, store, "--json", "run", commit, "--no-input")
	r = core.Run{}
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.ImageDigest != hostD || r.IndexDigest != idxD {
		t.Errorf("FROM --platform=linux/%s: exit %d, record %s / %s\n%s", hostArch(), code, r.ImageDigest, r.IndexDigest, errs)
	}

	// A platform the index does not hold is refused, and nothing is recorded.
	before := runCount(t, store)
	commit = add("FROM --platform=linux/riscv64 busybox@" + idxD + "\nCMD [\"/bin/true\"]\n")
	out, errs, code = cli(t, store, "--json", "run", commit, "--no-input")
	if code != exitRunprov {
		t.Errorf("FROM --platform=linux/riscv64: exit %d, want %d\n%s\n%s", code, exitRunprov, out, errs)
	}
	for _, want := range []string{"linux/riscv64", "linux/" + hostArch(), "linux/" + otherArch()} {
		if !strings.Contains(errs, want) {
			t.Errorf("the refusal does not name %s:\n%s", want, errs)
		}
	}
	if n := runCount(t, store); n != before {
		t.Errorf("a refused run was recorded: %d runs, had %d", n, before)
	}
}
