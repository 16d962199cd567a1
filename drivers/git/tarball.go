package git

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
)

// gitDirName is the one top-level entry of a container_run_commands tarball.
const gitDirName = ".git"

// maxTarballEntry bounds one file restored from a tarball, so a corrupt or
// hostile value cannot fill the disk.
const maxTarballEntry = 1 << 30

// archiveTime is the modification time written for every entry: git ignores
// it, and a fixed value makes the tarball of a given .git always the same
// bytes (and so the same sha256).
var archiveTime = time.Unix(0, 0).UTC()

// archiveDir writes a tar of dir/.git with entries named ".git/...", sorted,
// with fixed times and owners.
func archiveDir(dir string) ([]byte, error) {
	root := filepath.Join(dir, gitDirName)
	var names []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("archive .git: %w", err)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, err
		}
		hdr := &tar.Header{Name: name, ModTime: archiveTime, Format: tar.FormatPAX}
		switch {
		case fi.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
		case fi.Mode().IsRegular():
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, int64(fi.Mode().Perm()|0o600)&0o755, fi.Size()
		default:
			return nil, fmt.Errorf("archive .git: %s is neither a file nor a directory", name)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// restoreDir unpacks a container_run_commands tarball into the empty
// directory dir. Only directories and regular files under .git/ are
// accepted: anything else (links, devices, absolute or ../ names) means the
// value is corrupt or hostile, and nothing outside dir is ever written.
func restoreDir(tarball []byte, dir string) error {
	return restore(tarball,
		func(name string) error { return os.MkdirAll(filepath.Join(dir, filepath.FromSlash(name)), 0o755) },
		func(name string) (io.WriteCloser, error) {
			target := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return nil, err
			}
			// O_EXCL|O_NOFOLLOW: never write through something already there.
			return os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, 0o644)
		})
}

// restore checks every entry of tarball and hands directories to mkdir and
// files to create, by slash name relative to the root that holds .git.
func restore(tarball []byte, mkdir func(name string) error, create func(name string) (io.WriteCloser, error)) error {
	tr := tar.NewReader(bytes.NewReader(tarball))
	seen := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: read tarball: %v", core.ErrCorrupt, err)
		}
		name := path.Clean(strings.TrimSuffix(hdr.Name, "/"))
		if name != gitDirName && !strings.HasPrefix(name, gitDirName+"/") {
			return fmt.Errorf("%w: tarball entry %q is outside .git/", core.ErrCorrupt, hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := mkdir(name); err != nil {
				return err
			}
		case tar.TypeReg:
			if hdr.Size > maxTarballEntry {
				return fmt.Errorf("%w: tarball entry %q is %d bytes", core.ErrCorrupt, hdr.Name, hdr.Size)
			}
			f, err := create(name)
			if err != nil {
				return fmt.Errorf("%w: restore %q: %v", core.ErrCorrupt, hdr.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: tarball entry %q is cut short", core.ErrCorrupt, hdr.Name)
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: tarball entry %q has type %q; only files and directories are allowed", core.ErrCorrupt, hdr.Name, hdr.Typeflag)
		}
		seen++
	}
	if seen == 0 {
		return fmt.Errorf("%w: tarball is empty", core.ErrCorrupt)
	}
	// archive/tar reads a tarball cut short at an entry's end or inside a
	// file's padding as a complete, shorter archive. The tarballs runprov
	// writes end with tar's two zero blocks: without them, entries are lost.
	if !endsWithTarTrailer(tarball) {
		return fmt.Errorf("%w: tarball is truncated: it lacks the end-of-archive blocks", core.ErrCorrupt)
	}
	return nil
}

// endsWithTarTrailer reports whether tarball ends with the two 512-byte zero
// blocks that close a tar archive.
func endsWithTarTrailer(tarball []byte) bool {
	const trailer = 2 * 512
	if len(tarball) < trailer || len(tarball)%512 != 0 {
		return false
	}
	for _, b := range tarball[len(tarball)-trailer:] {
		if b != 0 {
			return false
		}
	}
	return true
}
