package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runprov/runprov/core"
)

// testRegistry serves go-containerregistry's registry on loopback with
// idx pushed as REPO:1; tamper, when set, may change a response body.
func testRegistry(t *testing.T, idx v1.ImageIndex, tamper func(path string, body []byte) []byte) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	h := http.Handler(reg)
	if tamper != nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet {
				reg.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			reg.ServeHTTP(rec, r)
			body := tamper(r.URL.Path, rec.Body.Bytes())
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.Code)
			w.Write(body)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	tag, err := name.NewTag(host+"/test/busybox:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	return host + "/test/busybox"
}

func TestPullByDigest(t *testing.T) {
	ctx := context.Background()
	idx, amd, arm := testIndex(t)
	repo := testRegistry(t, idx, nil)
	s, _ := newTestStore(t, false)

	ref := repo + ":1@" + digestOf(t, idx)
	recs, err := s.Pull(ctx, ref, core.PullOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	// The index and the host's (linux/amd64) manifest only.
	if len(recs) != 2 || recs[0].Digest != digestOf(t, idx) || recs[1].Digest != digestOf(t, amd) ||
		recs[1].IndexDigest != recs[0].Digest || recs[0].Source != "registry:"+ref || recs[0].Ref != ref {
		t.Fatalf("pulled %+v", recs)
	}
	if err := s.Verify(ctx, recs[0].Digest, nil); err != nil {
		t.Fatal(err)
	}
	res, err := s.Resolve(ctx, recs[0].Digest, "")
	if err != nil || res.ManifestDigest != digestOf(t, amd) || res.IndexDigest != digestOf(t, idx) {
		t.Fatalf("resolve: %+v %v", res, err)
	}
	// Another platform of the same index, then a manifest by its own digest.
	recs, err = s.Pull(ctx, ref, core.PullOptions{Insecure: true, Platform: "linux/arm64"})
	if err != nil || recs[1].Digest != digestOf(t, arm) {
		t.Fatalf("pull arm64: %+v %v", recs, err)
	}
	s2, _ := newTestStore(t, false)
	recs, err = s2.Pull(ctx, repo+"@"+digestOf(t, amd), core.PullOptions{Insecure: true})
	if err != nil || len(recs) != 1 || recs[0].Platform != "linux/amd64" {
		t.Fatalf("pull a manifest: %+v %v", recs, err)
	}
	// A manifest for another platform than asked is refused.
	if _, err := s2.Pull(ctx, repo+"@"+digestOf(t, arm), core.PullOptions{Insecure: true}); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("pull an arm64 manifest for amd64: %v", err)
	}
}

// A tag alone is refused, with the digest to pin.
func TestPullTagRefused(t *testing.T) {
	idx, _, _ := testIndex(t)
	repo := testRegistry(t, idx, nil)
	s, _ := newTestStore(t, false)
	_, err := s.Pull(context.Background(), repo+":1", core.PullOptions{Insecure: true})
	if !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("pull by tag: %v", err)
	}
	if want := "runprov image pull " + repo + ":1@" + digestOf(t, idx); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not show %q", err, want)
	}
	_, err = s.Pull(context.Background(), repo+":nope", core.PullOptions{Insecure: true})
	if !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "digest only") {
		t.Errorf("pull by an unknown tag: %v", err)
	}
	assertNothingKept(t, s)
}

// A registry that serves a tampered layer or manifest is refused with the
// expected and actual digests, and nothing of the pull stays in the store.
func TestPullTampered(t *testing.T) {
	idx, amd, _ := testIndex(t)
	layers, err := amd.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layer, _ := layers[0].Digest()
	cases := []struct {
		name  string
		path  string // the response to tamper with
		ref   func(repo string) string
		wantD string
	}{
		{"layer", "/blobs/" + layer.String(), func(repo string) string { return repo + "@" + digestOf(t, idx) }, layer.String()},
		{"manifest", "/manifests/" + digestOf(t, amd), func(repo string) string { return repo + "@" + digestOf(t, idx) }, digestOf(t, amd)},
		{"index", "/manifests/" + digestOf(t, idx), func(repo string) string { return repo + "@" + digestOf(t, idx) }, digestOf(t, idx)},
		{"config", "/blobs/" + mustConfigDigest(t, amd), func(repo string) string { return repo + "@" + digestOf(t, amd) }, mustConfigDigest(t, amd)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := testRegistry(t, idx, func(path string, body []byte) []byte {
				if strings.HasSuffix(path, c.path) && len(body) > 0 {
					body = bytes.Clone(body)
					body[len(body)/2] ^= 0x01
				}
				return body
			})
			s, _ := newTestStore(t, false)
			_, err := s.Pull(context.Background(), c.ref(repo), core.PullOptions{Insecure: true})
			var mm *core.DigestMismatchError
			if !errors.As(err, &mm) || mm.Want != c.wantD || mm.Got == mm.Want || !strings.HasPrefix(mm.Got, "sha256:") {
				t.Fatalf("pull from a tampering registry: %v", err)
			}
			t.Logf("refused: %v", err)
			if !strings.Contains(err.Error(), "expected "+mm.Want+", got "+mm.Got) {
				t.Errorf("error %q lacks the digests", err)
			}
			assertNothingKept(t, s)
		})
	}
}

func mustConfigDigest(t *testing.T, img v1.Image) string {
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}
