package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/runprov/runprov/core"
)

// Records is what the driver needs from the middleware (drivers/sqlite):
// the images and image_events tables, and the store settings.
type Records interface {
	// PutImageRecords stores recs in one transaction with one event per
	// record (ev.Event and ev.Note as given, Digest from the record). A
	// record whose digest is already stored keeps its row (import time,
	// source, approval) and only gains a ref or index digest it lacked.
	PutImageRecords(ctx context.Context, recs []core.ImageRecord, ev core.ImageEvent) error
	// ImageRecord returns the row of digest (a full digest) or an error
	// wrapping core.ErrNotFound.
	ImageRecord(ctx context.Context, digest string) (*core.ImageRecord, error)
	// ImageRecords returns every row, oldest import first.
	ImageRecords(ctx context.Context) ([]core.ImageRecord, error)
	// ImageDigests returns up to limit stored digests that start with
	// prefix ("sha256:ab"), in order.
	ImageDigests(ctx context.Context, prefix string, limit int) ([]string, error)
	// SetImageApproval sets or clears the approval of digest and records ev
	// (approve or revoke, with its note and user) in one transaction.
	// Returns an error wrapping core.ErrNotFound for a digest not stored.
	SetImageApproval(ctx context.Context, digest string, approved bool, ev core.ImageEvent) error
	// RemoveImageRecords deletes the rows of digests and records ev for each,
	// in one transaction. Events are kept.
	RemoveImageRecords(ctx context.Context, digests []string, ev core.ImageEvent) error
	// ImageEvents returns the events of digest ("" = all), oldest first.
	ImageEvents(ctx context.Context, digest string) ([]core.ImageEvent, error)
	// Setting returns a store setting and whether it is set.
	Setting(ctx context.Context, key string) (string, bool, error)
	// RunsOfImages returns the ids of the recorded runs that used any of
	// digests (as manifest or index), oldest first.
	RunsOfImages(ctx context.Context, digests []string) ([]string, error)
}

// Options tune New. The zero value is right for the CLI.
type Options struct {
	// Logger receives what unpack neutralised and what import skipped
	// (nil: discard).
	Logger *slog.Logger
	// Transport is the HTTP transport for registries (nil: http.DefaultTransport).
	Transport http.RoundTripper
	// Keychain finds registry credentials (nil: authn.DefaultKeychain, the
	// docker/podman config files).
	Keychain authn.Keychain
	// Platform overrides the host platform, "os/arch[/variant]" (tests).
	Platform string
}

// Store is the image store of one runprov store directory.
type Store struct {
	layout    core.Layout
	rec       Records
	log       *slog.Logger
	transport http.RoundTripper
	keychain  authn.Keychain
	host      v1.Platform
}

// New returns the image store of layout, keeping its rows in rec.
func New(layout core.Layout, rec Records, opts Options) *Store {
	s := &Store{layout: layout, rec: rec, log: opts.Logger, transport: opts.Transport, keychain: opts.Keychain}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.transport == nil {
		s.transport = http.DefaultTransport
	}
	if s.keychain == nil {
		s.keychain = authn.DefaultKeychain
	}
	s.host = hostPlatform()
	if opts.Platform != "" {
		if p, err := parsePlatform(opts.Platform); err == nil {
			s.host = p
		}
	}
	return s
}

// HostPlatform is the platform Resolve and Pull pick by default.
func (s *Store) HostPlatform() string { return platformString(s.host) }

func hostPlatform() v1.Platform {
	p := v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if p.Architecture == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// --- digests ---

// checkDigest accepts "sha256:<64 lowercase hex>" only: digests come from
// manifests an attacker may write, and name files in the store.
func checkDigest(d string) error {
	algo, hx, ok := strings.Cut(d, ":")
	if !ok || algo != "sha256" {
		if ok && (algo == "sha512" || algo == "sha384") {
			return fmt.Errorf("digest %q: %w: only sha256 digests are supported", d, core.ErrUnsupported)
		}
		return fmt.Errorf("digest %q: %w: want sha256:<64 hex digits>", d, core.ErrInvalid)
	}
	if len(hx) != 64 || strings.Trim(hx, "0123456789abcdef") != "" {
		return fmt.Errorf("digest %q: %w: want sha256:<64 lowercase hex digits>", d, core.ErrInvalid)
	}
	return nil
}

func digestHex(d string) string { return strings.TrimPrefix(d, "sha256:") }

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Lookup expands a digest or a unique prefix of a stored one ("sha256:"
// optional, at least one hex digit) to the full stored digest. Errors: an
// *core.ImageNotFoundError, or core.ErrAmbiguous listing the matches.
func (s *Store) Lookup(ctx context.Context, prefix string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(prefix))
	if i := strings.LastIndex(p, "@"); i >= 0 { // NAME@sha256:... as written in a Runfile
		p = p[i+1:]
	}
	p = strings.TrimPrefix(p, "sha256:")
	if p == "" || len(p) > 64 || strings.Trim(p, "0123456789abcdef") != "" {
		return "", &core.NameError{Kind: core.NameImage, Err: fmt.Errorf("image %q: %w: give a digest (sha256:<hex>) or a unique prefix of one", prefix, core.ErrInvalid)}
	}
	ds, err := s.rec.ImageDigests(ctx, "sha256:"+p, 10)
	if err != nil {
		return "", err
	}
	switch len(ds) {
	case 0:
		return "", &core.ImageNotFoundError{Digest: "sha256:" + p}
	case 1:
		return ds[0], nil
	}
	return "", fmt.Errorf("image prefix %q: %w: it names %s", prefix, core.ErrAmbiguous, strings.Join(ds, ", "))
}

// --- layout paths ---

func (s *Store) blobDir() string { return filepath.Join(s.layout.Images(), "blobs", "sha256") }

// blobPath is where blob d lives; d must have passed checkDigest.
func (s *Store) blobPath(d string) string { return filepath.Join(s.blobDir(), digestHex(d)) }

func (s *Store) ensureLayout() error {
	if err := os.MkdirAll(s.blobDir(), 0o755); err != nil {
		return fmt.Errorf("create image layout: %w", err)
	}
	p := filepath.Join(s.layout.Images(), "oci-layout")
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return writeFileAtomic(p, []byte(`{"imageLayoutVersion":"1.0.0"}`+"\n"))
	}
	return nil
}

// readBlob reads a small stored blob (a manifest or a config) and checks its
// digest: a tampered manifest is never trusted, even from the store.
func (s *Store) readBlob(d, what string, limit int64) ([]byte, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s %s: %w: the blob is missing from %s", what, d, core.ErrCorrupt, s.layout.Images())
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", what, d, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s %s: %w: larger than %d bytes", what, d, core.ErrInvalid, limit)
	}
	if got := sha256Digest(data); got != d {
		return nil, &core.DigestMismatchError{What: what + " blob in the store", Want: d, Got: got}
	}
	return data, nil
}

// Size limits for the JSON blobs runprov parses.
const (
	maxManifestSize = 4 << 20
	maxConfigSize   = 32 << 20
)

// --- locking ---

// lock takes the store-wide image lock: shared for readers of blobs (unpack,
// verify), exclusive for whoever adds or deletes blobs, rows or rootfs
// directories (import and pull when they commit, rm, gc). It waits, and
// gives up when ctx ends.
func (s *Store) lock(ctx context.Context, exclusive bool) (unlock func(), err error) {
	if err := s.ensureLayout(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.layout.Images(), ".runprov-lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open image store lock: %w", err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock image store: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for the image store lock: %w", ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// --- index.json ---

// writeIndex rewrites STORE/images/index.json from the rows, so that the
// layout stays readable by OCI tools (skopeo, umoci): one descriptor per
// image not held by a stored index. Callers hold the exclusive lock.
func (s *Store) writeIndex(ctx context.Context) error {
	recs, err := s.rec.ImageRecords(ctx)
	if err != nil {
		return err
	}
	stored := map[string]bool{}
	for _, r := range recs {
		stored[r.Digest] = true
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: core.MediaTypeOCIIndex, Manifests: []v1.Descriptor{}}
	for _, r := range recs {
		if r.IndexDigest != "" && stored[r.IndexDigest] {
			continue
		}
		h, err := v1.NewHash(r.Digest)
		if err != nil {
			continue
		}
		fi, err := os.Stat(s.blobPath(r.Digest))
		if err != nil {
			continue // fsck reports it
		}
		d := v1.Descriptor{MediaType: mediaTypeOf(r.MediaType), Size: fi.Size(), Digest: h}
		if r.Ref != "" {
			d.Annotations = map[string]string{"org.opencontainers.image.ref.name": r.Ref}
		}
		idx.Manifests = append(idx.Manifests, d)
	}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.layout.Images(), "index.json"), append(data, '\n'))
}

// writeFileAtomic writes data to a temporary file beside path and renames it
// over path.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, bytes.NewReader(data)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// --- events ---
