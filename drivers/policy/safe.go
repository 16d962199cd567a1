package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/runprov/runprov/core"
)

// openSafe opens the regular file path (symlinks resolved) and checks that
// only root could have written it: the file and every directory above it are
// owned by root and not writable by group or others. Sticky world-writable
// directories such as /tmp are refused too, as sshd does: a site policy has
// no business there. It returns the open file and its resolved path.
func openSafe(path string) (*os.File, string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, "", err
	}
	// O_NOFOLLOW and fstat: what is checked is what is read.
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, "", err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", real)
	}
	if err == nil {
		err = checkOwner(real, fi)
	}
	for dir := filepath.Dir(real); err == nil; dir = filepath.Dir(dir) {
		var di os.FileInfo
		if di, err = os.Lstat(dir); err == nil {
			err = checkOwner(dir, di)
		}
		if dir == "/" {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, "", err
	}
	return f, real, nil
}

// CheckSafe reports whether only root could have written path (see
// openSafe).
func CheckSafe(path string) error {
	f, _, err := openSafe(path)
	if err != nil {
		return err
	}
	return f.Close()
}

func checkOwner(path string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read its owner", path)
	}
	if st.Uid != 0 {
		return fmt.Errorf("%w: %s is owned by uid %d, not root", core.ErrUnsafe, path, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: %s is writable by group or others (mode %04o)", core.ErrUnsafe, path, st.Mode&0o7777)
	}
	return nil
}
