package git

import (
	"bytes"
	"errors"
	"os"
	"strings"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
)

// gitFS is the file system go-git's storage works on: the OS's, except that
// pack and pack index files are read into memory when opened for reading.
// go-git decodes an index with one read per field, which on a plain file is
// one system call per 4 bytes and dominated the cost of an add at 1000
// commits, and reads each object of a pack with a seek and a few small
// reads. It is for storage that keeps its files open (newStorage): one
// that opens the pack once per object read would read all of it each time.
type gitFS struct {
	billy.Filesystem
}

func newGitFS(dir string) billy.Filesystem { return gitFS{osfs.New(dir)} }

// Open implements billy.Basic.
func (fs gitFS) Open(name string) (billy.File, error) {
	return fs.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile implements billy.Basic.
func (fs gitFS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	if flag != os.O_RDONLY || !strings.HasSuffix(name, ".idx") && !strings.HasSuffix(name, ".pack") {
		return fs.Filesystem.OpenFile(name, flag, perm)
	}
	f, err := fs.Filesystem.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, err
	}
	return &memFile{name: f.Name(), Reader: bytes.NewReader(buf.Bytes())}, nil
}

// Chmod passes through: go-git makes packs read-only when it can.
func (fs gitFS) Chmod(name string, mode os.FileMode) error {
	if c, ok := fs.Filesystem.(billy.Chmod); ok {
		return c.Chmod(name, mode)
	}
	return nil
}

// Capabilities passes through, so go-git keeps its read-write fast paths.
func (fs gitFS) Capabilities() billy.Capability { return billy.Capabilities(fs.Filesystem) }

// Chroot keeps the wrapper for sub-filesystems.
func (fs gitFS) Chroot(path string) (billy.Filesystem, error) {
	sub, err := fs.Filesystem.Chroot(path)
	if err != nil {
		return nil, err
	}
	return gitFS{sub}, nil
}

// memFile is a read-only billy.File held in memory.
type memFile struct {
	name string
	*bytes.Reader
}

var errReadOnly = errors.New("read-only in-memory file")

func (f *memFile) Name() string              { return f.name }
func (f *memFile) Write([]byte) (int, error) { return 0, errReadOnly }
func (f *memFile) Close() error              { return nil }
func (f *memFile) Lock() error               { return nil }
func (f *memFile) Unlock() error             { return nil }
func (f *memFile) Truncate(int64) error      { return errReadOnly }
