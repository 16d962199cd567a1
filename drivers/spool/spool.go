package spool

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/runprov/runprov/core"
)

// Spool is a release spool directory.
type Spool struct {
	Dir string
}

// The spool's parts.
const (
	requestsDir = "requests"
	votesDir    = "votes"
	logDir      = "log"
)

// validName is what the spool accepts as request ids, file names inside a
// request, and vote and log names: no path separators, no leading dot.
var validName = core.LazyRegexp(`^[A-Za-z0-9_][A-Za-z0-9_.+-]*$`)

var hexSum = core.LazyRegexp(`^[0-9a-f]{64}$`)

// Ready makes the spool's parts that are missing, with the spool
// directory's own permissions (a spool shared through a group or a sticky
// world-writable directory passes that on). An administrator may make them
// beforehand, owned by root, so that no user can remove another's files.
func (s *Spool) Ready(ctx context.Context) error {
	fi, err := os.Stat(s.Dir)
	if err != nil {
		return fmt.Errorf("release spool: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("release spool %s: %w: not a directory", s.Dir, core.ErrInvalid)
	}
	for _, d := range []string{requestsDir, votesDir, logDir} {
		p := filepath.Join(s.Dir, d)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("release spool: %w", err)
		}
		if err := os.Chmod(p, fi.Mode().Perm()|fi.Mode()&(os.ModeSticky|os.ModeSetgid)); err != nil {
			return fmt.Errorf("release spool: %w", err)
		}
	}
	return nil
}

// NewID returns a new request id: 16 random hex digits.
func NewID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Sum is the hex sha256 of data.
func Sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// PutRequest writes request id: files (name → content) and blobs
// (content-addressed files under files/, each named by its hex sha256,
// copied from the open readers), all read-only. The request appears whole
// or not at all: it is built under a temporary name and renamed into place.
// An id that exists is an error matching os.ErrExist.
func (s *Spool) PutRequest(ctx context.Context, id string, files map[string][]byte, blobs map[string]func() (io.ReadCloser, error)) error {
	if !validName().MatchString(id) {
		return fmt.Errorf("request id %q: %w", id, core.ErrInvalid)
	}
	final := filepath.Join(s.Dir, requestsDir, id)
	if _, err := os.Lstat(final); err == nil {
		return fmt.Errorf("request %s: %w", id, os.ErrExist)
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.Dir, requestsDir), ".tmp-"+id+"-")
	if err != nil {
		return fmt.Errorf("write request %s: %w", id, err)
	}
	defer os.RemoveAll(tmp) // after the rename, nothing is there
	if err := writeRequest(ctx, tmp, files, blobs); err != nil {
		return fmt.Errorf("write request %s: %w", id, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("write request %s: %w", id, err)
	}
	return nil
}

func writeRequest(ctx context.Context, dir string, files map[string][]byte, blobs map[string]func() (io.ReadCloser, error)) error {
	for n, data := range files {
		if !validName().MatchString(n) {
			return fmt.Errorf("file name %q: %w", n, core.ErrInvalid)
		}
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o444); err != nil {
			return err
		}
	}
	fdir := filepath.Join(dir, "files")
	if err := os.Mkdir(fdir, 0o755); err != nil {
		return err
	}
	for sum, open := range blobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := copyBlob(fdir, sum, open); err != nil {
			return err
		}
	}
	if err := os.Chmod(fdir, 0o555); err != nil {
		return err
	}
	return os.Chmod(dir, 0o555)
}

// copyBlob copies a file's content under its sha256, checking that it is
// still what was hashed: a file that changed since is refused.
func copyBlob(dir, sum string, open func() (io.ReadCloser, error)) error {
	if !hexSum().MatchString(sum) {
		return fmt.Errorf("blob name %q: %w: not a sha256", sum, core.ErrInvalid)
	}
	r, err := open()
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(filepath.Join(dir, sum), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return &core.DigestMismatchError{Want: "sha256:" + sum, Got: "sha256:" + got}
	}
	return nil
}

// RequestIDs lists the requests, sorted.
func (s *Spool) RequestIDs(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.Dir, requestsDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("release spool: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && validName().MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Resolve returns the request id that prefix names; core.ErrNotFound when
// none does, core.ErrAmbiguous when several do.
func (s *Spool) Resolve(ctx context.Context, prefix string) (string, error) {
	ids, err := s.RequestIDs(ctx)
	if err != nil {
		return "", err
	}
	var found []string
	for _, id := range ids {
		if strings.HasPrefix(id, prefix) {
			found = append(found, id)
		}
	}
	switch {
	case prefix == "" || len(found) == 0:
		return "", fmt.Errorf("release request %q: %w", prefix, core.ErrNotFound)
	case len(found) > 1:
		return "", fmt.Errorf("release request %q: %w: it names %s", prefix, core.ErrAmbiguous, strings.Join(found, ", "))
	}
	return found[0], nil
}

// ReadRequestFile reads file n of request id (n may be files/SHA256).
func (s *Spool) ReadRequestFile(ctx context.Context, id, n string) ([]byte, error) {
	p, err := s.RequestPath(id, n)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// RequestPath is the path of file n of request id.
func (s *Spool) RequestPath(id, n string) (string, error) {
	dir, base := filepath.Split(n)
	if !validName().MatchString(id) || !validName().MatchString(base) || (dir != "" && dir != "files/") {
		return "", fmt.Errorf("request file %s/%s: %w", id, n, core.ErrInvalid)
	}
	return filepath.Join(s.Dir, requestsDir, id, n), nil
}

// PutVote writes a vote of request id under a new name and returns it.
func (s *Spool) PutVote(ctx context.Context, id, key string, data []byte) (string, error) {
	for i := 0; i < 100; i++ {
		n := fmt.Sprintf("%s.%s.%s.json", id, key, NewID()[:8])
		if !validName().MatchString(n) {
			return "", fmt.Errorf("vote name %q: %w", n, core.ErrInvalid)
		}
		err := putExclusive(filepath.Join(s.Dir, votesDir), n, data)
		if !errors.Is(err, os.ErrExist) {
			return n, err
		}
	}
	return "", fmt.Errorf("write vote: %w: no free name", os.ErrExist)
}

// Votes returns the votes of request id ("" for every request) by name.
func (s *Spool) Votes(ctx context.Context, id string) (map[string][]byte, error) {
	dir := filepath.Join(s.Dir, votesDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("release spool: %w", err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || !validName().MatchString(n) || (id != "" && !strings.HasPrefix(n, id+".")) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("read vote %s: %w", n, err)
		}
		out[n] = data
	}
	return out, nil
}

// putExclusive writes data to dir/n, read-only, unless n exists
// (os.ErrExist): written under a temporary name, then linked into place.
func putExclusive(dir, n string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o444)
	}
	if err != nil {
		return err
	}
	return os.Link(tmp, filepath.Join(dir, n))
}

// Owner returns the uid that owns a request (part "requests", name its id),
// a vote ("votes") or a log entry ("log"): the kernel sets it when the file
// is made, so it says which OS account wrote it whatever the file claims.
func (s *Spool) Owner(ctx context.Context, part, n string) (int, error) {
	if (part != requestsDir && part != votesDir && part != logDir) || !validName().MatchString(n) {
		return 0, fmt.Errorf("spool %s/%s: %w", part, n, core.ErrInvalid)
	}
	fi, err := os.Lstat(filepath.Join(s.Dir, part, n))
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("spool %s/%s: %w: no owner", part, n, core.ErrUnsupported)
	}
	return int(st.Uid), nil
}
