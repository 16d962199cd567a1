package image

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/runprov/runprov/core"
)

// Each offline format imports, verifies, resolves; flipping one byte of a
// stored layer makes verify fail naming that blob.
func TestImportFormats(t *testing.T) {
	ctx := context.Background()
	idx, amd, arm := testIndex(t)
	idxDigest, amdDigest, armDigest := digestOf(t, idx), digestOf(t, amd), digestOf(t, arm)
	layoutDir := writeLayout(t, idx, "example.org/busybox:1")

	ociArchive := filepath.Join(t.TempDir(), "oci.tar")
	tarDir(t, layoutDir, ociArchive)
	gzArchive := ociArchive + ".gz"
	gzipFile(t, ociArchive, gzArchive)

	cases := []struct {
		name   string
		path   string
		source string
		want   []string // digests stored, in order
	}{
		{"oci-layout", layoutDir, "oci-layout:", []string{idxDigest, amdDigest, armDigest}},
		{"oci-archive", ociArchive, "oci-archive:", []string{idxDigest, amdDigest, armDigest}},
		{"oci-archive.gz", gzArchive, "oci-archive:", []string{idxDigest, amdDigest, armDigest}},
		{"docker-archive", writeDockerArchive(t, amd, "example.org/busybox:1"), "docker-archive:", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := newTestStore(t, false)
			recs, err := s.Import(ctx, c.path, ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Digest)
				if !strings.HasPrefix(r.Source, c.source) {
					t.Errorf("source %q, want prefix %q", r.Source, c.source)
				}
			}
			if c.want != nil && strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("imported %v\nwant %v", got, c.want)
			}
			if c.want == nil && (len(recs) != 1 || recs[0].Platform != "linux/amd64" || recs[0].Ref != "example.org/busybox:1") {
				t.Errorf("docker archive imported %+v", recs)
			}
			for _, r := range recs {
				if r.IndexDigest == "" && r.Ref != "example.org/busybox:1" {
					t.Errorf("ref %q", r.Ref)
				}
			}
			root := recs[0].Digest
			if err := s.Verify(ctx, root, nil); err != nil {
				t.Fatalf("verify after import: %v", err)
			}
			// A second import changes nothing and copies nothing.
			again, err := s.Import(ctx, c.path, ImportOptions{})
			if err != nil || len(again) != len(recs) {
				t.Fatalf("re-import: %v %v", again, err)
			}
			res, err := s.Resolve(ctx, root[:20], "")
			if err != nil {
				t.Fatal(err)
			}
			if res.Platform != "linux/amd64" || res.Config.Cmd[0] != "/bin/sh" || res.Config.Labels["org.example"] != "test" {
				t.Errorf("resolved %+v", res)
			}
			if c.want != nil {
				if res.IndexDigest != idxDigest || res.ManifestDigest != amdDigest || res.Ref != "example.org/busybox:1" {
					t.Errorf("resolved %+v", res)
				}
				arm, err := s.Resolve(ctx, idxDigest, "linux/arm64")
				if err != nil || arm.ManifestDigest != armDigest {
					t.Errorf("resolve arm64: %+v %v", arm, err)
				}
				if _, err := s.Resolve(ctx, idxDigest, "linux/s390x"); !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "linux/amd64, linux/arm64/v8") {
					t.Errorf("resolve s390x: %v, want ErrInvalid listing the platforms", err)
				}
				if _, err := s.Resolve(ctx, armDigest, ""); !errors.Is(err, core.ErrInvalid) {
					t.Errorf("resolve an arm64 manifest on amd64: %v, want ErrInvalid", err)
				}
			}

			// Tamper with the largest stored layer (busybox).
			layer := largestBlob(t, s)
			flipByte(t, s.blobPath(layer))
			err = s.Verify(ctx, root, nil)
			var mm *core.DigestMismatchError
			if !errors.As(err, &mm) || mm.Want != layer || mm.Got == layer || !strings.Contains(mm.What, "layer 1 of manifest") {
				t.Fatalf("verify after flipping a byte of %s: %v", layer, err)
			}
			if !errors.Is(err, core.ErrCorrupt) || !strings.Contains(err.Error(), layer) {
				t.Errorf("verify error %q should match ErrCorrupt and name %s", err, layer)
			}
		})
	}
}

func largestBlob(t *testing.T, s *Store) string {
	t.Helper()
	var best string
	var size int64
	for _, b := range storedBlobs(t, s) {
		fi, err := os.Stat(filepath.Join(s.blobDir(), b))
		if err == nil && fi.Size() > size {
			best, size = "sha256:"+b, fi.Size()
		}
	}
	return best
}

func gzipFile(t *testing.T, in, out string) {
	t.Helper()
	src, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	zw := gzip.NewWriter(dst)
	if _, err := io.Copy(zw, src); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// The podman save format: uncompressed layers, checked against the config's
// diff ids, stored byte for byte.
func TestImportLegacyDockerArchive(t *testing.T) {
	ctx := context.Background()
	layers := [][]byte{busyboxLayer(t), layerTar(t, tFile("hello.txt", "hello\n", 0o644))}
	img := testImage(t, "amd64", gzLayer(t, layers[0]), gzLayer(t, layers[1]))
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	archive := writeLegacyDockerArchive(t, cfg, layers, "localhost/busybox:latest")

	s, _ := newTestStore(t, false)
	recs, err := s.Import(ctx, archive, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].ConfigDigest != sha256Digest(cfg) || recs[0].Ref != "localhost/busybox:latest" {
		t.Fatalf("imported %+v", recs)
	}
	for _, l := range layers {
		if _, err := os.Stat(s.blobPath(sha256Digest(l))); err != nil {
			t.Errorf("uncompressed layer not stored as is: %v", err)
		}
	}
	if err := s.Verify(ctx, recs[0].Digest, nil); err != nil {
		t.Fatal(err)
	}
	dir, _, err := s.Unpack(ctx, recs[0].Digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "hello.txt")); err != nil || string(data) != "hello\n" {
		t.Errorf("hello.txt: %q %v", data, err)
	}

	// The same archive with one byte of a layer changed: refused, nothing kept.
	layers[1] = append([]byte(nil), layers[1]...)
	layers[1][600] ^= 1
	bad := writeLegacyDockerArchive(t, cfg, layers, "localhost/busybox:latest")
	s2, _ := newTestStore(t, false)
	_, err = s2.Import(ctx, bad, ImportOptions{})
	var mm *core.DigestMismatchError
	if !errors.As(err, &mm) || !strings.Contains(mm.What, "layer 2") || !strings.Contains(mm.What, "diff id") {
		t.Fatalf("import of a tampered docker archive: %v", err)
	}
	assertNothingKept(t, s2)
}

// A tampered blob in an OCI archive aborts the import: no blob, no row, no
// temporary file is kept, and the error names expected and actual digests.
func TestImportTamperedArchive(t *testing.T) {
	ctx := context.Background()
	idx, amd, _ := testIndex(t)
	dir := writeLayout(t, idx, "")
	layers, err := amd.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ld, _ := layers[0].Digest()
	flipByte(t, filepath.Join(dir, "blobs", "sha256", ld.Hex))
	archive := filepath.Join(t.TempDir(), "oci.tar")
	tarDir(t, dir, archive)

	s, _ := newTestStore(t, false)
	_, err = s.Import(ctx, archive, ImportOptions{})
	var mm *core.DigestMismatchError
	if !errors.As(err, &mm) || mm.Want != ld.String() || mm.Got == "" || mm.Got == mm.Want {
		t.Fatalf("import: %v, want a digest mismatch for %s", err, ld)
	}
	for _, want := range []string{mm.Want, mm.Got, "expected", "got"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	assertNothingKept(t, s)
}

// --platform keeps one manifest of an index.
func TestImportPlatform(t *testing.T) {
	idx, _, arm := testIndex(t)
	s, _ := newTestStore(t, false)
	recs, err := s.Import(context.Background(), writeLayout(t, idx, ""), ImportOptions{Platform: "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[1].Digest != digestOf(t, arm) {
		t.Fatalf("imported %+v", recs)
	}
	// The amd64 manifest was not imported: resolving the index for the host says so.
	_, err = s.Resolve(context.Background(), recs[0].Digest, "")
	var nf *core.ImageNotFoundError
	if !errors.As(err, &nf) || nf.Platform != "linux/amd64" || nf.Index == "" {
		t.Errorf("resolve for amd64: %v", err)
	}
	if _, err := s.Import(context.Background(), writeLayout(t, idx, ""), ImportOptions{Platform: "linux/riscv64"}); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("import for riscv64: %v, want ErrInvalid", err)
	}
}

func TestImportRefusesOther(t *testing.T) {
	s, _ := newTestStore(t, false)
	notTar := filepath.Join(t.TempDir(), "x.txt")
	os.WriteFile(notTar, []byte("hello, this is not a tar archive at all, it is long enough to have a header block"), 0o644)
	emptyTar := filepath.Join(t.TempDir(), "empty.tar")
	tarDir(t, t.TempDir(), emptyTar)
	for _, p := range []string{notTar, emptyTar, t.TempDir()} {
		if _, err := s.Import(context.Background(), p, ImportOptions{}); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("import %s: %v, want ErrInvalid", p, err)
		}
	}
	assertNothingKept(t, s)
}

// The store itself is an OCI layout that go-containerregistry (and so
// skopeo, umoci) can read.
func TestStoreIsAnOCILayout(t *testing.T) {
	idx, amd, _ := testIndex(t)
	s, _ := newTestStore(t, false)
	if _, err := s.Import(context.Background(), writeLayout(t, idx, "example.org/x:1"), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(s.layout.Images())
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ii.IndexManifest()
	if err != nil || len(m.Manifests) != 1 || m.Manifests[0].Digest.String() != digestOf(t, idx) {
		t.Fatalf("index.json: %+v %v", m, err)
	}
	child, err := ii.ImageIndex(mustHash(digestOf(t, idx)))
	if err != nil {
		t.Fatal(err)
	}
	img, err := child.Image(mustHash(digestOf(t, amd)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.ConfigFile(); err != nil {
		t.Fatal(err)
	}
}

func TestLookup(t *testing.T) {
	idx, amd, _ := testIndex(t)
	s, _ := newTestStore(t, false)
	if _, err := s.Import(context.Background(), writeLayout(t, idx, ""), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	full := digestOf(t, amd)
	for _, in := range []string{full, full[:15], strings.TrimPrefix(full, "sha256:")[:6], "busybox@" + full, strings.ToUpper(full[7:20])} {
		if got, err := s.Lookup(context.Background(), in); err != nil || got != full {
			t.Errorf("Lookup(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := s.Lookup(context.Background(), "sha256:"); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("empty prefix: %v", err)
	}
	if _, err := s.Lookup(context.Background(), "zz"); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("not hex: %v", err)
	}
	var nf *core.ImageNotFoundError
	if _, err := s.Lookup(context.Background(), strings.Repeat("0", 64)); !errors.As(err, &nf) || !errors.Is(err, core.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	// Three digests: some one-digit prefix is shared by two of them, or all differ.
	recs, _ := s.List(context.Background())
	seen := map[byte]int{}
	for _, r := range recs {
		seen[r.Digest[7]]++
	}
	for c, n := range seen {
		if n > 1 {
			if _, err := s.Lookup(context.Background(), string(c)); !errors.Is(err, core.ErrAmbiguous) {
				t.Errorf("ambiguous prefix %c: %v", c, err)
			}
		}
	}
}
