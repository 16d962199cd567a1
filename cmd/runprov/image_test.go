package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
)

// cli runs runprov with --store store and returns stdout, stderr and the exit code.
func cli(t *testing.T, store string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := execute(context.Background(), append([]string{"--store", store}, args...), strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// mustCLI runs runprov and fails the test unless it exits with want.
func mustCLI(t *testing.T, want int, store string, args ...string) (string, string) {
	t.Helper()
	out, errs, code := cli(t, store, args...)
	if code != want {
		t.Fatalf("runprov %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errs)
	}
	return out, errs
}

// cliTestIndex is a two-platform index of a busybox image.
func cliTestIndex(t *testing.T) (v1.ImageIndex, v1.Image) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		coretest.Unavailable(t, "/bin/busybox is missing: install busybox-static")
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))})
	tw.Write(bb)
	tw.WriteHeader(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "/bin/busybox"})
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz.Bytes())), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(arch string) v1.Image {
		img, err := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), l)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		cf.Config.Cmd = []string{"/bin/sh"}
		img, err = mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	host := mk(hostArch())
	other := mk(otherArch())
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: host, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: hostArch()}}},
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: otherArch()}}},
	)
	return idx, host
}

func hostArch() string { return runtime.GOARCH }

func digest(t *testing.T, x interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func newCLIStore(t *testing.T, args ...string) string {
	t.Helper()
	store := filepath.Join(t.TempDir(), "store")
	mustCLI(t, 0, store, append([]string{"init"}, args...)...)
	return store
}

func TestImageCLI(t *testing.T) {
	idx, host := cliTestIndex(t)
	idxD, hostD := digest(t, idx), digest(t, host)
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "example.org/busybox:1"})); err != nil {
		t.Fatal(err)
	}
	store := newCLIStore(t, "--tre")

	out, _ := mustCLI(t, 0, store, "image", "import", dir)
	if !strings.Contains(out, idxD+"  index") || !strings.Contains(out, hostD+"  linux/"+hostArch()) {
		t.Errorf("import printed:\n%s", out)
	}

	out, _ = mustCLI(t, 0, store, "--json", "image", "ls")
	var recs []core.ImageRecord
	if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 3 || recs[0].Digest != idxD || recs[0].Ref != "example.org/busybox:1" {
		t.Fatalf("image ls --json: %v\n%s", err, out)
	}
	out, _ = mustCLI(t, 0, store, "image", "ls")
	if !strings.Contains(out, "DIGEST") || !strings.Contains(out, shortDigest(idxD)) || !strings.Contains(out, "index") {
		t.Errorf("image ls:\n%s", out)
	}
	mustCLI(t, 0, store, "--csv", "image", "ls")

	mustCLI(t, 0, store, "image", "verify", idxD[:14])
	out, _ = mustCLI(t, 0, store, "image", "inspect", idxD)
	var res core.ResolvedImage
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.ManifestDigest != hostD || res.IndexDigest != idxD || res.Approved {
		t.Errorf("inspect: %v %+v", err, res)
	}
	out, _ = mustCLI(t, 0, store, "image", "unpack", idxD)
	if _, err := os.Stat(filepath.Join(strings.TrimSpace(out), "bin", "busybox")); err != nil {
		t.Errorf("unpack printed %q: %v", out, err)
	}
	out, _ = mustCLI(t, 0, store, "--json", "image", "unpack", hostD)
	if !strings.Contains(out, `"reused": true`) {
		t.Errorf("second unpack: %s", out)
	}

	// Approval, with its history.
	out, _ = mustCLI(t, 0, store, "--json", "image", "approve", idxD, "--note", "reviewed: ticket 7")
	if !strings.Contains(out, `"approved": true`) || !strings.Contains(out, "ticket 7") {
		t.Errorf("approve --json: %s", out)
	}
	mustCLI(t, 0, store, "image", "revoke", idxD[:12], "--note", "withdrawn")
	_, errs := mustCLI(t, exitRunprov, store, "image", "revoke", idxD[:12])
	if !strings.Contains(errs, "not approved") {
		t.Errorf("revoke twice: %s", errs)
	}
	out, _ = mustCLI(t, 0, store, "--json", "image", "log", idxD)
	var evs []core.ImageEvent
	if err := json.Unmarshal([]byte(out), &evs); err != nil || len(evs) != 3 || evs[1].Note != "reviewed: ticket 7" || evs[2].Event != "revoke" {
		t.Errorf("image log: %v %s", err, out)
	}
	mustCLI(t, 0, store, "image", "log")
	out, _ = mustCLI(t, 0, store, "query", "SELECT event, note FROM image_events ORDER BY id")
	if !strings.Contains(out, "withdrawn") {
		t.Errorf("image_events through runprov query:\n%s", out)
	}

	// fsck sees a missing blob; verify names a changed one.
	mustCLI(t, 0, store, "fsck")
	layers, _ := host.Layers()
	ld, _ := layers[0].Digest()
	blob := filepath.Join(store, "images", "blobs", "sha256", ld.Hex)
	data, _ := os.ReadFile(blob)
	data[len(data)/2] ^= 1
	os.WriteFile(blob, data, 0o644)
	_, errs = mustCLI(t, exitRunprov, store, "image", "verify", idxD)
	if !strings.Contains(errs, "expected "+ld.String()) {
		t.Errorf("verify of a changed blob:\n%s", errs)
	}
	os.Remove(blob)
	out, _ = mustCLI(t, exitRunprov, store, "fsck")
	if !strings.Contains(out, ld.String()+" is missing") {
		t.Errorf("fsck of a missing blob:\n%s", out)
	}

	// rm refuses a manifest of an index; removes the index; gc.
	_, errs = mustCLI(t, exitRunprov, store, "image", "rm", hostD)
	if !strings.Contains(errs, "remove the index") {
		t.Errorf("rm manifest: %s", errs)
	}
	out, _ = mustCLI(t, 0, store, "image", "rm", idxD)
	if strings.Count(out, "sha256:") != 3 {
		t.Errorf("rm printed:\n%s", out)
	}
	mustCLI(t, 0, store, "--json", "image", "gc")
	out, _ = mustCLI(t, 0, store, "--json", "image", "ls")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("ls after rm: %s", out)
	}
	_, errs = mustCLI(t, exitRunprov, store, "image", "inspect", idxD)
	if !strings.Contains(errs, "hint: import it with: runprov image import PATH") {
		t.Errorf("inspect of a removed image:\n%s", errs)
	}
}

func TestImageCLIUsageAndFailures(t *testing.T) {
	store := newCLIStore(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"image", "import"}, exitUsage, "image import: which image?"},
		{[]string{"image", "verify", "a", "b"}, exitUsage, ""},
		{[]string{"image", "ls", "--bogus"}, exitUsage, "unknown flag"},
		{[]string{"image", "import", filepath.Join(t.TempDir(), "missing.tar")}, exitRunprov, "no such file"},
		{[]string{"image", "verify", "sha256:zz"}, exitRunprov, "invalid input"},
		{[]string{"image", "verify", "0123"}, exitRunprov, "not found"},
		{[]string{"image", "pull", "example.org/x@sha256:123"}, exitRunprov, "invalid"},
	} {
		_, errs, code := cli(t, store, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("runprov %s: exit %d, stderr %q; want %d and %q", strings.Join(c.args, " "), code, errs, c.code, c.want)
		}
	}
	if _, errs, code := cli(t, filepath.Join(t.TempDir(), "nostore"), "image", "ls"); code != exitRunprov || !strings.Contains(errs, "runprov init") {
		t.Errorf("image ls without a store: %d %s", code, errs)
	}
}

func TestImageCLIPull(t *testing.T) {
	idx, host := cliTestIndex(t)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	repo := strings.TrimPrefix(reg.URL, "http://") + "/test/busybox"
	tag, _ := name.NewTag(repo+":1", name.Insecure)
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	store := newCLIStore(t)
	_, errs := mustCLI(t, exitRunprov, store, "image", "pull", "--insecure", repo+":1")
	if !strings.Contains(errs, "runprov image pull "+repo+":1@"+digest(t, idx)) {
		t.Errorf("pull by tag:\n%s", errs)
	}
	out, _ := mustCLI(t, 0, store, "--json", "image", "pull", "--insecure", repo+":1@"+digest(t, idx))
	var recs []core.ImageRecord
	if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 2 || recs[1].Digest != digest(t, host) {
		t.Fatalf("pull --json: %v\n%s", err, out)
	}
}
