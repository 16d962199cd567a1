package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
	"github.com/runprov/runprov/drivers/sqlite"
)

// newTestStore makes a store in a temporary directory; its host platform
// is linux/amd64 whatever the machine.
func newTestStore(t *testing.T, requireApproval bool) (*Store, *sqlite.Store) {
	t.Helper()
	setting := map[string]string{core.SettingRequireApproval: "false"}
	if requireApproval {
		setting[core.SettingRequireApproval] = "true"
	}
	dir := t.TempDir()
	// Unpacked rootfs directories can be read-only: t.TempDir's cleanup
	// could not remove them when the tests do not run as root.
	t.Cleanup(func() { removeAll(dir) })
	db, _, err := sqlite.Init(context.Background(), dir, setting, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return New(db.Layout(), db, Options{Platform: "linux/amd64", Logger: log}), db
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// busybox returns /bin/busybox (busybox-static) or makes the test unavailable.
func busybox(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		coretest.Unavailable(t, "/bin/busybox is missing: install busybox-static")
	}
	return data
}

// tarEntry describes one entry of a test layer.
type tEntry struct {
	name string
	typ  byte
	mode int64
	body []byte
	link string
}

func tFile(name, body string, mode int64) tEntry {
	return tEntry{name, tar.TypeReg, mode, []byte(body), ""}
}
func tDir(name string, mode int64) tEntry { return tEntry{name, tar.TypeDir, mode, nil, ""} }
func tLink(name, target string) tEntry    { return tEntry{name, tar.TypeSymlink, 0o777, nil, target} }

func layerTar(t testing.TB, entries ...tEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)), Linkname: e.link,
			ModTime: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gzLayer makes a gzip-compressed OCI layer of an uncompressed tar.
func gzLayer(t testing.TB, tarData []byte) v1.Layer {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarData)
	zw.Close()
	// Compressed once here: a layer made from an uncompressed opener is
	// compressed again on every read.
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz.Bytes())), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testImage builds an OCI image of layers for arch.
func testImage(t testing.TB, arch string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Cmd = []string{"/bin/sh", "-c", "echo hello"}
	cf.Config.Env = []string{"PATH=/bin"}
	cf.Config.WorkingDir = "/"
	cf.Config.Labels = map[string]string{"org.example": "test"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// busyboxLayer is a layer with /bin/busybox, /bin/sh -> /bin/busybox and /etc/passwd.
func busyboxLayer(t *testing.T) []byte {
	return layerTar(t,
		tDir("bin/", 0o755), tEntry{"bin/busybox", tar.TypeReg, 0o755, busybox(t), ""},
		tLink("bin/sh", "/bin/busybox"), tDir("etc/", 0o755),
		tFile("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n", 0o644))
}

// testIndex is a two-platform index of busybox images (the arm64 one holds
// the same amd64 binary: it is never run).
func testIndex(t *testing.T) (v1.ImageIndex, v1.Image, v1.Image) {
	t.Helper()
	l := gzLayer(t, busyboxLayer(t))
	extra := gzLayer(t, layerTar(t, tFile("hello.txt", "hello\n", 0o644)))
	amd := testImage(t, "amd64", l, extra)
	arm := testImage(t, "arm64", l)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	return idx, amd, arm
}

func digestOf(t testing.TB, x interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// writeLayout writes idx as an OCI image layout in a new directory.
func writeLayout(t *testing.T, idx v1.ImageIndex, ref string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tarDir writes the files of dir as a tar archive at out.
func tarDir(t *testing.T, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeDockerArchive writes img as `docker save` would (go-containerregistry's
// tarball.Write: compressed layers named <digest>.tar.gz).
func writeDockerArchive(t *testing.T, img v1.Image, tag string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "docker.tar")
	ref, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		t.Fatal(err)
	}
	return out
}

// writeLegacyDockerArchive writes the format of podman save and older
// docker save: uncompressed <id>/layer.tar files and <config hex>.json.
func writeLegacyDockerArchive(t *testing.T, cfg []byte, layers [][]byte, tag string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "legacy.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	put := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	cfgName := strings.TrimPrefix(sha256Digest(cfg), "sha256:") + ".json"
	put(cfgName, cfg)
	var names []string
	for i, l := range layers {
		n := strings.Repeat(string(rune('a'+i)), 64) + "/layer.tar"
		put(n, l)
		names = append(names, n)
	}
	m, _ := json.Marshal([]dockerEntry{{Config: cfgName, RepoTags: []string{tag}, Layers: names}})
	put("manifest.json", m)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// blobs lists the blob file names in the store's layout.
func storedBlobs(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.blobDir())
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// tmpEntries lists what is left in STORE/tmp.
func tmpEntries(t *testing.T, s *Store) []string {
	t.Helper()
	entries, _ := os.ReadDir(s.layout.Tmp())
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// assertNothingKept fails unless the store holds no blob, row or temporary file.
func assertNothingKept(t *testing.T, s *Store) {
	t.Helper()
	if b := storedBlobs(t, s); len(b) != 0 {
		t.Errorf("blobs kept after a refused copy: %v", b)
	}
	recs, err := s.List(context.Background())
	if err != nil || len(recs) != 0 {
		t.Errorf("rows kept after a refused copy: %v %v", recs, err)
	}
	if tmp := tmpEntries(t, s); len(tmp) != 0 {
		t.Errorf("temporary files kept: %v", tmp)
	}
}

// flipByte changes one byte in the middle of file p.
func flipByte(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
