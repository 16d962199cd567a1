package inventory

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/runprov/runprov/core"
)

// Read lists the packages of the root filesystem at dir, sorted by
// ecosystem, name, version and location. It reads through an os.Root of
// dir: a symlink that points outside dir is an error, never followed.
func Read(ctx context.Context, dir string) ([]core.Package, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	defer root.Close()
	return ReadFS(ctx, root.FS())
}

// ReadFS is Read over any file system whose root is the image's /.
func ReadFS(ctx context.Context, fsys fs.FS) ([]core.Package, error) {
	d := distroOf(fsys)
	var pkgs []core.Package
	for _, r := range []func(fs.FS, distro) ([]core.Package, error){readDpkg, readApk, readRPM} {
		ps, err := r(fsys, d)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, ps...)
	}
	ps, err := walk(ctx, fsys)
	if err != nil {
		return nil, err
	}
	pkgs = append(pkgs, ps...)
	slices.SortFunc(pkgs, comparePackages)
	return slices.CompactFunc(pkgs, func(a, b core.Package) bool { return a == b }), nil
}

func comparePackages(a, b core.Package) int {
	for _, c := range [][2]string{{a.Ecosystem, b.Ecosystem}, {a.Name, b.Name}, {a.Version, b.Version}, {a.Location, b.Location}, {a.Arch, b.Arch}} {
		if n := strings.Compare(c[0], c[1]); n != 0 {
			return n
		}
	}
	return 0
}

// distro is the image's /etc/os-release ID and VERSION_ID, the namespace
// of deb and rpm package URLs.
type distro struct{ id, version string }

func distroOf(fsys fs.FS) distro {
	var d distro
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		data, err := readSmall(fsys, p)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
			if !ok {
				continue
			}
			v = strings.Trim(v, `"'`)
			switch k {
			case "ID":
				d.id = strings.ToLower(v)
			case "VERSION_ID":
				d.version = v
			}
		}
		break
	}
	return d
}

// qualifier is the distro qualifier of a package URL ("debian-12").
func (d distro) qualifier() string {
	if d.id == "" || d.version == "" {
		return ""
	}
	return d.id + "-" + d.version
}

// maxMetadata caps one metadata file: a package database is rarely above a
// few MiB, and an image must not make runprov read gigabytes.
const maxMetadata = 256 << 20

// readSmall reads a regular file of at most maxMetadata bytes; a missing
// file is fs.ErrNotExist.
func readSmall(fsys fs.FS, name string) ([]byte, error) {
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: not a regular file", name, fs.ErrNotExist)
	}
	if fi.Size() > maxMetadata {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", name, core.ErrInvalid, maxMetadata)
	}
	return fs.ReadFile(fsys, name)
}

// missing reports whether err means the file is not there, or cannot be
// reached inside the root (a symlink out of it): nothing to inventory.
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "path escapes")
}

// abs makes an fs.FS path absolute inside the image.
func abs(p string) string { return path.Join("/", p) }
