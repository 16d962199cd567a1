package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runprov/runprov/core"
)

// importImage stores img (a single manifest) through an OCI layout.
func importImage(t *testing.T, s *Store, img v1.Image) string {
	t.Helper()
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{Add: img})
	recs, err := s.Import(context.Background(), writeLayout(t, idx, ""), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return recs[len(recs)-1].Digest
}

// rawLayer is an uncompressed layer blob.
func rawLayer(data []byte) v1.Layer { return static.NewLayer(data, types.OCIUncompressedLayer) }

// Whiteouts and opaque directories give the right tree; modes are kept
// (setuid and setgid dropped), files belong to the user running runprov;
// the rootfs is made once and reused.
func TestUnpackLayers(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, false)
	img := testImage(t, "amd64",
		gzLayer(t, layerTar(t,
			tDir("a/", 0o755), tFile("a/x", "x\n", 0o644), tFile("a/y", "y\n", 0o644),
			tDir("b/", 0o755), tFile("b/old", "old\n", 0o644), tDir("b/sub/", 0o755), tFile("b/sub/deep", "d\n", 0o644),
			tFile("keep", "keep\n", 0o600), tFile("gone", "gone\n", 0o644), tDir("gonedir/", 0o755), tFile("gonedir/f", "f\n", 0o644),
			tLink("link", "/keep"))),
		rawLayer(layerTar(t,
			tFile("a/.wh.x", "", 0o644),
			tDir("b/", 0o750), tFile("b/.a-early", "same layer, sorted before the marker\n", 0o644),
			tFile("b/.wh..wh..opq", "", 0o644), tFile("b/new", "new\n", 0o644),
			tFile(".wh.gone", "", 0o644), tFile(".wh.gonedir", "", 0o644),
			tFile("c/file", "implicit parent\n", 0o640),
			tFile("re/.wh.f", "", 0o644), tFile("re/f", "whited out and added in one layer\n", 0o644),
			tDir("ro/", 0o555), tFile("ro/f", "read only\n", 0o444),
			tFile("suid", "s\n", 0o4755))),
		gzLayer(t, layerTar(t, tFile("ro/later", "written into a 0555 directory by a later layer\n", 0o644))),
	)
	d := importImage(t, s, img)
	dir, reused, err := s.Unpack(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if reused || dir != s.layout.Rootfs(digestHex(d)) {
		t.Fatalf("Unpack = %s, %v", dir, reused)
	}
	got := tree(t, dir)
	want := `  drwxr-xr-x .
  drwxr-xr-x a
  -rw-r--r-- a/y "y\n"
  drwxr-x--- b
  -rw-r--r-- b/.a-early "same layer, sorted before the marker\n"
  -rw-r--r-- b/new "new\n"
  drwxr-xr-x c
  -rw-r----- c/file "implicit parent\n"
  -rw------- keep "keep\n"
  Lrwxrwxrwx link -> /keep
  drwxr-xr-x re
  -rw-r--r-- re/f "whited out and added in one layer\n"
  dr-xr-xr-x ro
  -r--r--r-- ro/f "read only\n"
  -rw-r--r-- ro/later "written into a 0555 directory by a later layer\n"
  -rwxr-xr-x suid "s\n"
`
	if got != want {
		t.Errorf("rootfs:\n%s\nwant:\n%s", got, want)
	}
	fi, _ := os.Stat(filepath.Join(dir, "a", "y"))
	if uid := statUID(t, filepath.Join(dir, "a", "y")); uid != os.Getuid() {
		t.Errorf("owner %d, want the user running runprov (%d)", uid, os.Getuid())
	}
	if mt := fi.ModTime().UTC().Format("2006-01-02 15:04:05"); mt != "2024-05-06 07:08:09" {
		t.Errorf("mtime %s, want the layer's", mt)
	}

	dir2, reused, err := s.Unpack(ctx, d[:12], nil)
	if err != nil || !reused || dir2 != dir {
		t.Fatalf("second Unpack = %s, %v, %v; want the same rootfs, reused", dir2, reused, err)
	}
	if tmp := tmpEntries(t, s); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func statUID(t *testing.T, p string) int {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

// An unpack cancelled halfway (as Ctrl-C does) leaves no rootfs and no
// temporary directory; the next one unpacks, the one after reuses.
func TestUnpackCancelled(t *testing.T) {
	var entries []tEntry
	for i := range 3000 {
		entries = append(entries, tFile(fmt.Sprintf("f/%04d", i), strings.Repeat("x", 100), 0o644))
	}
	s, _ := newTestStore(t, false)
	d := importImage(t, s, testImage(t, "amd64", gzLayer(t, layerTar(t, entries...))))

	ctx, cancel := context.WithCancel(context.Background())
	p := &cancelProgress{cancel: cancel}
	_, _, err := s.Unpack(ctx, d, p)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled unpack: %v", err)
	}
	if _, err := os.Lstat(s.layout.Rootfs(digestHex(d))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cancelled unpack left a rootfs: %v", err)
	}
	if tmp := tmpEntries(t, s); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	if _, reused, err := s.Unpack(context.Background(), d, nil); err != nil || reused {
		t.Fatalf("unpack after the cancelled one: reused=%v %v", reused, err)
	}
	if _, reused, err := s.Unpack(context.Background(), d, nil); err != nil || !reused {
		t.Fatalf("third unpack: reused=%v %v", reused, err)
	}
}

type cancelProgress struct {
	cancel func()
	added  int64
}

func (p *cancelProgress) Start(string, int64) {}
func (p *cancelProgress) Add(n int64) {
	p.added += n
	if p.added > 0 {
		p.cancel()
	}
}
func (p *cancelProgress) Done() {}

// A runprov killed while unpacking leaves its temporary directory, never a
// rootfs; gc removes the leftovers once the process is gone.
func TestUnpackKilledLeavesNoRootfs(t *testing.T) {
	s, _ := newTestStore(t, false)
	d := importImage(t, s, testImage(t, "amd64", gzLayer(t, layerTar(t, tFile("a", "a\n", 0o644)))))
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(s.layout.Tmp(), fmt.Sprintf("%d-unpack-123", dead.Process.Pid))
	os.MkdirAll(filepath.Join(stale, "rootfs", "ro"), 0o755)
	os.WriteFile(filepath.Join(stale, "rootfs", "ro", "f"), []byte("half"), 0o644)
	os.Chmod(filepath.Join(stale, "rootfs", "ro"), 0o555)
	if _, reused, err := s.Unpack(context.Background(), d, nil); err != nil || reused {
		t.Fatalf("unpack beside a stale temporary directory: %v %v", reused, err)
	}
	st, err := s.GC(context.Background())
	if err != nil || st.Temp != 1 {
		t.Fatalf("gc: %+v %v", st, err)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("gc left %s", stale)
	}
}

// A layer that tries to escape is refused through Store.Unpack too, and
// nothing of the unpack is kept.
func TestUnpackRefusesEscape(t *testing.T) {
	for _, c := range []string{"dotdot-entry", "hardlink-dotdot", "whiteout-dotdot-name"} {
		t.Run(c, func(t *testing.T) {
			dir := filepath.Join("..", "..", "testdata", "image", "malicious", c)
			var layers []v1.Layer
			for i := 1; ; i++ {
				data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("layer%d.tar", i)))
				if err != nil {
					break
				}
				layers = append(layers, rawLayer(data))
			}
			s, _ := newTestStore(t, false)
			d := importImage(t, s, testImage(t, "amd64", layers...))
			_, _, err := s.Unpack(context.Background(), d, nil)
			if !errors.Is(err, core.ErrUnsafe) {
				t.Fatalf("unpack: %v, want ErrUnsafe", err)
			}
			if _, err := os.Lstat(s.layout.Rootfs(digestHex(d))); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused unpack left a rootfs")
			}
			if tmp := tmpEntries(t, s); len(tmp) != 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
}

// Unpack re-hashes each layer: a stored blob changed after import is
// refused and no rootfs is made from it.
func TestUnpackVerifiesLayers(t *testing.T) {
	s, _ := newTestStore(t, false)
	data := layerTar(t, tFile("a", strings.Repeat("a", 4000), 0o644))
	d := importImage(t, s, testImage(t, "amd64", rawLayer(data)))
	p := s.blobPath(sha256Digest(data))
	b, _ := os.ReadFile(p)
	b[1000] = 'b' // still a valid tar
	os.WriteFile(p, b, 0o644)
	_, _, err := s.Unpack(context.Background(), d, nil)
	var mm *core.DigestMismatchError
	if !errors.As(err, &mm) || mm.Want != sha256Digest(data) {
		t.Fatalf("unpack of a changed layer: %v", err)
	}
	if _, err := os.Lstat(s.layout.Rootfs(digestHex(d))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rootfs was made from a changed layer")
	}
}

// An index is refused by Unpack (it names no single rootfs).
func TestUnpackIndexRefused(t *testing.T) {
	idx, _, _ := testIndex(t)
	s, _ := newTestStore(t, false)
	if _, err := s.Import(context.Background(), writeLayout(t, idx, ""), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Unpack(context.Background(), digestOf(t, idx), nil); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("unpack of an index: %v", err)
	}
}

// Large files and many layers through the gzip pipeline.
func TestUnpackBusybox(t *testing.T) {
	idx, _, _ := testIndex(t)
	s, _ := newTestStore(t, false)
	if _, err := s.Import(context.Background(), writeLayout(t, idx, ""), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Resolve(context.Background(), digestOf(t, idx), "")
	if err != nil {
		t.Fatal(err)
	}
	var p countProgress
	dir, _, err := s.Unpack(context.Background(), res.ManifestDigest, &p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "bin", "busybox"))
	if err != nil || !bytes.Equal(got, busybox(t)) {
		t.Fatalf("bin/busybox differs from /bin/busybox: %v", err)
	}
	if target, _ := os.Readlink(filepath.Join(dir, "bin", "sh")); target != "/bin/busybox" {
		t.Errorf("bin/sh -> %q", target)
	}
	if p.total <= 0 || p.added != p.total || p.done != 1 {
		t.Errorf("progress %+v", p)
	}
}

type countProgress struct{ total, added, done int64 }

func (p *countProgress) Start(_ string, total int64) { p.total = total }
func (p *countProgress) Add(n int64)                 { p.added += n }
func (p *countProgress) Done()                       { p.done++ }

// A tar stream that ends early is refused.
func TestUnpackTruncatedLayer(t *testing.T) {
	data := layerTar(t, tFile("big", strings.Repeat("z", 10000), 0o644))
	var trunc bytes.Buffer
	trunc.Write(data[:3000])
	rootfs := t.TempDir()
	a, err := newApplier(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	a.startLayer(1)
	if err := a.apply(context.Background(), &trunc); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("truncated layer: %v, want ErrInvalid", err)
	}
}
