package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/runprov/runprov/core"
)

var update = flag.Bool("update", false, "rewrite the golden files of the malicious-layer suite")

// escapeMarker is where the suite's absolute symlinks point; it must never appear.
const escapeMarker = "/tmp/runprov-malicious-escape"

// hostCanary is where the relative escapes of the suite land when the
// test's temporary directory is two levels under /tmp (DIR/rootfs/evil ->
// ../../../canary); it must never appear either.
const hostCanary = "/tmp/canary"

// TestMaliciousLayers unpacks each case of testdata/image/malicious into
// DIR/rootfs beside a canary directory DIR/canary and checks that nothing
// outside the rootfs changed (every file of DIR outside the rootfs, and the
// host path the absolute symlinks aim at), that no file of the rootfs is a
// hardlink to a file outside it, that none of the host paths outside DIR
// that the case's entries would write if names, ".." and symlinks were
// followed naively (escapeTargets) exists before or after, and that the refusal or the neutralisations
// and the resulting tree are the ones in want.txt.
func TestMaliciousLayers(t *testing.T) {
	root := filepath.Join("..", "..", "testdata", "image", "malicious")
	cases, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 20 {
		t.Fatalf("only %d cases in %s (run: go run ./testdata/image/gen)", len(cases), root)
	}
	if _, err := os.Lstat(escapeMarker); err == nil {
		t.Fatalf("%s exists before the suite; remove it", escapeMarker)
	}
	for _, c := range cases {
		t.Run(c.Name(), func(t *testing.T) {
			dir := filepath.Join(root, c.Name())
			layers, _ := filepath.Glob(filepath.Join(dir, "layer*.tar"))
			sort.Strings(layers)
			if len(layers) == 0 {
				t.Fatal("no layer*.tar")
			}
			box := t.TempDir()
			canary := filepath.Join(box, "canary")
			os.MkdirAll(filepath.Join(canary, "sub"), 0o755)
			os.WriteFile(filepath.Join(canary, "secret"), []byte("secret\n"), 0o600)
			os.WriteFile(filepath.Join(canary, "file"), []byte("file\n"), 0o644)
			os.WriteFile(filepath.Join(canary, "sub", "deep"), []byte("deep\n"), 0o644)
			rootfs := filepath.Join(box, "rootfs")
			if err := os.Mkdir(rootfs, 0o700); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, box, rootfs)
			targets := outsideTargets(t, box, rootfs, layers)
			for _, p := range targets {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("%s exists before the case, so an escape there could not be seen; remove it", p)
				}
			}

			notices, err := applyTars(context.Background(), rootfs, layers)

			for _, p := range targets {
				if _, err := os.Lstat(p); err == nil {
					os.RemoveAll(p) // it did not exist before the case
					t.Errorf("the layer wrote %s on the host", p)
				}
			}

			if after := snapshot(t, box, rootfs); after != before {
				t.Errorf("the layer changed files outside the rootfs:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if _, err := os.Lstat(escapeMarker); err == nil {
				os.RemoveAll(escapeMarker)
				t.Errorf("the layer wrote %s on the host", escapeMarker)
			}
			var got strings.Builder
			for _, n := range notices {
				fmt.Fprintf(&got, "neutralised: %s\n", n)
			}
			if err != nil {
				fmt.Fprintf(&got, "refused: %v\n", strings.ReplaceAll(err.Error(), box, "DIR"))
				var le *LayerEntryError
				switch {
				case errors.Is(err, core.ErrUnsafe):
					got.WriteString("error matches core.ErrUnsafe\n")
				case errors.As(err, &le):
					got.WriteString("error matches core.ErrInvalid\n")
				default:
					t.Errorf("error %v is neither a LayerEntryError nor ErrUnsafe", err)
				}
			}
			if err == nil {
				got.WriteString("rootfs:\n")
				got.WriteString(tree(t, rootfs))
				checkNoOutsideLinks(t, rootfs)
			}
			golden := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run: go test ./drivers/image -run TestMaliciousLayers -update)", err)
			}
			if got.String() != string(want) {
				t.Errorf("got:\n%s\nwant (%s):\n%s", got.String(), golden, want)
			}
		})
	}
}

// outsideTargets is escapeTargets of the layers for rootfs, without the
// paths inside box (snapshot watches those), plus escapeMarker and hostCanary.
func outsideTargets(t *testing.T, box, rootfs string, layers []string) []string {
	t.Helper()
	all, err := escapeTargets(rootfs, layers)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range append(all, escapeMarker, hostCanary) {
		if p == box || strings.HasPrefix(p, box+string(filepath.Separator)) || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// escapeTargets lists the host paths that the entries of layers (applied
// in order to rootfs) would create, write or remove if an unpacker trusted
// them: each entry name as given when it is absolute, and each name joined
// to rootfs with ".." taken literally and every symlink made by an earlier
// entry followed as the host would (an absolute target from the host's /,
// a relative one from the link's directory), whiteout names included.
// Hardlink targets are sources, not writes (checkNoOutsideLinks covers
// them); every ancestor of a target outside rootfs is listed too.
func escapeTargets(rootfs string, layers []string) ([]string, error) {
	links := map[string]string{} // host path of a symlink entry -> its target
	var out []string
	add := func(p string) {
		p = filepath.Clean(p)
		if p == rootfs || strings.HasPrefix(p, rootfs+"/") {
			return
		}
		for ; p != "/" && p != "." && p != rootfs && !strings.HasPrefix(rootfs, p+"/"); p = filepath.Dir(p) {
			out = append(out, p)
		}
	}
	// resolve follows name from rootfs component by component, replacing
	// a component that is a known symlink by its target.
	resolve := func(name string) string {
		cur := rootfs
		parts := strings.Split(name, "/")
		for hops := 0; len(parts) > 0 && hops < 255; hops++ {
			c := parts[0]
			parts = parts[1:]
			next := filepath.Join(cur, c)
			if target, ok := links[next]; ok {
				if filepath.IsAbs(target) {
					next = filepath.Clean(target)
				} else {
					next = filepath.Join(filepath.Dir(next), target)
				}
			}
			cur = next
		}
		return cur
	}
	for _, l := range layers {
		f, err := os.Open(l)
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("read %s: %w", l, err)
			}
			if filepath.IsAbs(h.Name) {
				add(h.Name)
			}
			p := resolve(strings.TrimSuffix(h.Name, "/"))
			add(p)
			if base := filepath.Base(p); strings.HasPrefix(base, ".wh.") && base != ".wh..wh..opq" {
				add(filepath.Join(filepath.Dir(p), strings.TrimPrefix(base, ".wh.")))
			}
			if h.Typeflag == tar.TypeSymlink {
				links[filepath.Join(rootfs, strings.TrimSuffix(h.Name, "/"))] = h.Linkname
			}
		}
		f.Close()
	}
	return out, nil
}

// TestEscapeTargets: the escape targets derived from the suite's layers
// are the host paths its escapes aim at, so TestMaliciousLayers watches
// them.
func TestEscapeTargets(t *testing.T) {
	root := filepath.Join("..", "..", "testdata", "image", "malicious")
	const rootfs = "/tmp/TestMaliciousLayers1/001/rootfs"
	for _, c := range []struct {
		name string
		want []string
	}{
		{"symlink-parent-two-layers", []string{"/tmp/canary", "/tmp/canary/secret"}},
		{"symlink-abs-parent", []string{escapeMarker, escapeMarker + "/pwned"}},
		{"absolute-path", []string{"/abs-file"}},
		{"absolute-dotdot", []string{"/canary/pwned"}},
		{"dotdot-nested", []string{"/tmp/TestMaliciousLayers1/001/escaped"}},
		{"symlink-nested-parent", []string{"/tmp/TestMaliciousLayers1/001/canary/pwned"}},
		{"opaque-through-symlink", []string{"/tmp/TestMaliciousLayers1/001/canary/.wh..wh..opq"}},
		{"whiteout-through-symlink", []string{"/tmp/TestMaliciousLayers1/001/canary/secret"}},
		{"symlink-replaced-by-file", []string{"/tmp/TestMaliciousLayers1/001/canary/secret"}},
	} {
		layers, _ := filepath.Glob(filepath.Join(root, c.name, "layer*.tar"))
		sort.Strings(layers)
		got, err := escapeTargets(rootfs, layers)
		if err != nil || len(layers) == 0 {
			t.Fatalf("%s: %v (%d layers)", c.name, err, len(layers))
		}
		for _, w := range c.want {
			found := false
			for _, g := range got {
				found = found || g == w
			}
			if !found {
				t.Errorf("%s: escape targets %v lack %s", c.name, got, w)
			}
		}
		for _, g := range got {
			if g == rootfs || strings.HasPrefix(g, rootfs+"/") {
				t.Errorf("%s: %s is inside the rootfs", c.name, g)
			}
		}
	}
}

// applyTars applies uncompressed layer tars in order, as Unpack does.
func applyTars(ctx context.Context, rootfs string, layers []string) ([]Notice, error) {
	a, err := newApplier(rootfs)
	if err != nil {
		return nil, err
	}
	defer a.close()
	for i, l := range layers {
		a.startLayer(i + 1)
		f, err := os.Open(l)
		if err != nil {
			return a.notices, err
		}
		err = a.apply(ctx, f)
		f.Close()
		if err != nil {
			return a.notices, err
		}
	}
	return a.notices, a.finish()
}

// snapshot describes every file under dir except skip: path, type, mode,
// size, content hash, link target.
func snapshot(t *testing.T, dir, skip string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %v %d", rel, fi.Mode(), fi.Size())
		switch {
		case fi.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			sum := sha256.Sum256(data)
			fmt.Fprintf(&b, " %s nlink=%d", hex.EncodeToString(sum[:8]), fi.Sys().(*syscall.Stat_t).Nlink)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// tree lists a rootfs for the golden file: type, mode, path, and the
// target of symlinks or the content of small files.
func tree(t *testing.T, rootfs string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(rootfs, p)
		fmt.Fprintf(&b, "  %s %s", fi.Mode(), rel)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		case fi.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %q", data)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkNoOutsideLinks fails when a file of rootfs shares its inode with a
// file outside it: its link count is higher than the links found inside.
func checkNoOutsideLinks(t *testing.T, rootfs string) {
	t.Helper()
	inside := map[uint64]uint64{}
	nlink := map[uint64]uint64{}
	filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		inside[st.Ino]++
		nlink[st.Ino] = uint64(st.Nlink)
		return nil
	})
	for ino, n := range inside {
		if nlink[ino] != n {
			t.Errorf("inode %d has %d links but %d inside the rootfs: a hardlink to a file outside", ino, nlink[ino], n)
		}
	}
}
