package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runprov/runprov/core"
)

// Notice is a layer entry unpack neutralised rather than refused: it is
// logged, and the rootfs is what the entry asked for minus the danger.
type Notice struct {
	Layer int    // 1-based
	Path  string // the entry's name as in the layer
	What  string
}

func (n Notice) String() string { return fmt.Sprintf("layer %d: %q: %s", n.Layer, n.Path, n.What) }

// LayerEntryError is a layer entry unpack refused; nothing of the unpack is
// kept. It matches core.ErrUnsafe when the entry tried to reach outside the
// rootfs and core.ErrInvalid when it is malformed.
type LayerEntryError struct {
	Layer  int
	Path   string
	Reason string
	Err    error // core.ErrUnsafe or core.ErrInvalid
}

func (e *LayerEntryError) Error() string {
	return fmt.Sprintf("layer %d: entry %q: refused: %s (%v)", e.Layer, e.Path, e.Reason, e.Err)
}

func (e *LayerEntryError) Unwrap() error { return e.Err }

// maxSymlinkHops bounds symlink resolution, as the kernel's ELOOP does.
const maxSymlinkHops = 40

// maxCachedDirs bounds the open directory descriptors the applier keeps.
const maxCachedDirs = 512

// applier writes layer entries into a rootfs through file descriptors: every
// path is resolved one component at a time with openat(O_NOFOLLOW) from the
// rootfs's own descriptor, so nothing is ever looked up by a host path.
// Symlinks met as parent directories are followed the way the container
// will see them, inside the rootfs: an absolute target restarts at the
// rootfs, ".." stops at it. The last component is never followed: an entry
// replaces whatever is there (unlink, then create with O_EXCL|O_NOFOLLOW).
//
// Ownership is not restored: files belong to the user running runprov.
// Permission bits are kept except setuid and setgid; directories stay
// writable by their owner until finish gives them their modes, deepest
// first, so that later entries and layers can still write into them.
type applier struct {
	root  int
	cache map[string]int // canonical path of a real directory → open descriptor
	layer int
	// created holds the canonical paths the current layer wrote, as 64-bit
	// hashes: memory stays small for layers of many files (a collision, at
	// odds of about n²/2⁶⁵, would only keep a file a whiteout should hide).
	created map[uint64]struct{}
	seed    maphash.Seed
	dirs    map[string]dirMeta // canonical directory path → mode and mtime to give it at the end
	warned  map[string]bool    // escaping symlinks reported in the current layer
	rootDir *dirMeta           // the mode of "./", when a layer gives one
	notices []Notice
	umask   uint32
	buf     []byte
}

type dirMeta struct {
	mode  uint32
	mtime time.Time
}

func newApplier(dir string) (*applier, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs %s: %w", dir, err)
	}
	return &applier{
		root: fd, cache: map[string]int{}, created: map[uint64]struct{}{}, seed: maphash.MakeSeed(), dirs: map[string]dirMeta{},
		warned: map[string]bool{}, umask: processUmask(), buf: make([]byte, 256<<10),
	}, nil
}

func (a *applier) close() {
	a.dropCache()
	unix.Close(a.root)
}

func (a *applier) dropCache() {
	for _, fd := range a.cache {
		unix.Close(fd)
	}
	clear(a.cache)
}

// processUmask reads the umask without changing it (Linux 4.7+); when it
// cannot, it returns 0o777 so that every mode is set explicitly.
func processUmask() uint32 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o777
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return uint32(m)
			}
		}
	}
	return 0o777
}

func (a *applier) markCreated(canon string) { a.created[maphash.String(a.seed, canon)] = struct{}{} }

func (a *applier) wasCreated(canon string) bool {
	_, ok := a.created[maphash.String(a.seed, canon)]
	return ok
}

func (a *applier) startLayer(n int) {
	a.layer = n
	clear(a.created)
	clear(a.warned)
}

func (a *applier) notice(entry, what string) {
	a.notices = append(a.notices, Notice{Layer: a.layer, Path: entry, What: what})
}

func (a *applier) refuse(entry string, sentinel error, format string, args ...any) error {
	return &LayerEntryError{Layer: a.layer, Path: entry, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}

// apply writes the entries of one layer, a tar stream.
func (a *applier) apply(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("layer %d: %w: read tar: %w", a.layer, core.ErrInvalid, err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return err
		}
	}
}

// clean makes an entry or hardlink name relative to the rootfs. An absolute
// name is neutralised (made relative, as GNU tar does); one that climbs out
// with ".." is refused.
func (a *applier) clean(entry, name, what string) (string, error) {
	rel := name
	if strings.HasPrefix(rel, "/") {
		rel = strings.TrimLeft(rel, "/")
		a.notice(entry, fmt.Sprintf("%s %q is absolute: taken relative to the rootfs", what, name))
	}
	c := path.Clean(rel)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", a.refuse(entry, core.ErrUnsafe, "%s %q leaves the rootfs through \"..\"", what, name)
	}
	return c, nil
}

func joinRel(dir, name string) string {
	if dir == "" || dir == "." {
		return name
	}
	return dir + "/" + name
}

func splitRel(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// errNoDir reports a missing directory on a lookup that does not create.
var errNoDir = errors.New("no such directory")

// resolveDir returns a descriptor of directory rel (clean, relative) and its
// canonical path (no symlinks). Missing directories are created when create
// is set (mode 0755, as tar does for parents it was not given). The
// descriptor belongs to the cache: callers must not close it.
func (a *applier) resolveDir(entry, rel string, create bool) (int, string, error) {
	if rel == "" || rel == "." {
		return a.root, "", nil
	}
	if fd, ok := a.cache[rel]; ok {
		return fd, rel, nil
	}
	if len(a.cache) > maxCachedDirs {
		a.dropCache()
	}
	var (
		stack []string
		cur   = a.root
		parts = strings.Split(rel, "/")
		hops  int
		link  string // the symlink being followed, for the notice
		ltgt  string
	)
	escaped := func() {
		if link != "" && !a.warned[link] {
			a.warned[link] = true
			a.notice(entry, fmt.Sprintf("parent %q is a symlink to %q, outside the rootfs: followed inside the rootfs instead, as the container sees it", link, ltgt))
		}
	}
	for len(parts) > 0 {
		c := parts[0]
		parts = parts[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				escaped() // "/.." is "/"
				continue
			}
			stack = stack[:len(stack)-1]
			var err error
			if cur, err = a.dirFD(stack); err != nil {
				return -1, "", err
			}
			continue
		}
		next := strings.Join(append(stack, c), "/")
		if fd, ok := a.cache[next]; ok {
			stack, cur = append(stack, c), fd
			continue
		}
		fd, target, err := a.openChild(entry, cur, c, next, create)
		if err != nil {
			return -1, "", err
		}
		if fd < 0 { // a symlink: follow it within the rootfs
			if hops++; hops > maxSymlinkHops {
				return -1, "", a.refuse(entry, core.ErrInvalid, "too many levels of symbolic links under %q", rel)
			}
			link, ltgt = next, target
			if path.IsAbs(target) {
				escaped()
				stack, cur = nil, a.root
			}
			parts = append(strings.Split(target, "/"), parts...)
			continue
		}
		a.cache[next] = fd
		stack, cur = append(stack, c), fd
	}
	return cur, strings.Join(stack, "/"), nil
}

// openChild opens directory c of the directory cur (next is its path in
// the rootfs), creating it when asked. When c is a symlink, fd is -1 and
// target is the link's target, for resolveDir to follow inside the rootfs.
func (a *applier) openChild(entry string, cur int, c, next string, create bool) (fd int, target string, err error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err = unix.Openat(cur, c, flags, 0)
	switch {
	case err == nil:
		return fd, "", nil
	case errors.Is(err, unix.ENOENT) && create:
		if err := unix.Mkdirat(cur, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, "", fmt.Errorf("layer %d: create directory %q: %w", a.layer, next, err)
		}
		a.dirs[next] = dirMeta{mode: 0o755}
		a.markCreated(next)
		if fd, err = unix.Openat(cur, c, flags, 0); err != nil {
			return -1, "", fmt.Errorf("layer %d: open directory %q: %w", a.layer, next, err)
		}
		return fd, "", nil
	case errors.Is(err, unix.ENOENT):
		return -1, "", errNoDir
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
		var st unix.Stat_t
		if err := unix.Fstatat(cur, c, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return -1, "", fmt.Errorf("layer %d: stat %q: %w", a.layer, next, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if !create {
				return -1, "", errNoDir
			}
			return -1, "", a.refuse(entry, core.ErrInvalid, "parent %q is not a directory", next)
		}
		target, err := readlinkat(cur, c)
		if err != nil {
			return -1, "", fmt.Errorf("layer %d: read symlink %q: %w", a.layer, next, err)
		}
		return -1, target, nil
	}
	return -1, "", fmt.Errorf("layer %d: open directory %q: %w", a.layer, next, err)
}

// dirFD returns the descriptor of the real directory stack names, from the
// cache or opened again from the rootfs.
func (a *applier) dirFD(stack []string) (int, error) {
	cur := a.root
	for i, c := range stack {
		key := strings.Join(stack[:i+1], "/")
		if fd, ok := a.cache[key]; ok {
			cur = fd
			continue
		}
		fd, err := unix.Openat(cur, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("layer %d: open directory %q: %w", a.layer, key, err)
		}
		a.cache[key] = fd
		cur = fd
	}
	return cur, nil
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

// forget drops cached descriptors of canon and everything below it (it was
// removed or replaced) and the modes recorded for them.
func (a *applier) forget(canon string) {
	prefix := canon + "/"
	for k, fd := range a.cache {
		if k == canon || strings.HasPrefix(k, prefix) {
			unix.Close(fd)
			delete(a.cache, k)
		}
	}
	for k := range a.dirs {
		if k == canon || strings.HasPrefix(k, prefix) {
			delete(a.dirs, k)
		}
	}
}

// remove deletes name in directory pfd (canonical path pcanon), a whole
// tree if it is a directory. A missing name is not an error.
func (a *applier) remove(pfd int, pcanon, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		a.forget(joinRel(pcanon, name))
		return removeTree(pfd, name)
	}
	return unix.Unlinkat(pfd, name, 0)
}

// entry applies one tar entry.
func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	name, err := a.clean(hdr.Name, hdr.Name, "path")
	if err != nil {
		return err
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return a.refuse(hdr.Name, core.ErrInvalid, "the rootfs itself can only be a directory")
		}
		a.rootDir = &dirMeta{mode: a.stripMode(hdr, uint32(hdr.Mode)&0o7777), mtime: hdr.ModTime}
		return nil
	}
	dir, base := splitRel(name)
	if strings.HasPrefix(base, ".wh.") {
		return a.whiteout(hdr.Name, dir, base)
	}
	pfd, pcanon, err := a.resolveDir(hdr.Name, dir, true)
	if err != nil {
		return err
	}
	target := joinRel(pcanon, base)
	for k := range hdr.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && strings.HasPrefix(x, "security.") {
			a.notice(hdr.Name, fmt.Sprintf("extended attribute %s dropped (file capabilities and security labels are not unpacked)", x))
		}
	}
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = a.mkdir(hdr, pfd, base, target, a.stripMode(hdr, mode))
	case tar.TypeReg:
		err = a.file(hdr, r, pfd, pcanon, base, a.stripMode(hdr, mode))
	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return a.refuse(hdr.Name, core.ErrInvalid, "symlink with an empty target")
		}
		if err = a.replace(pfd, pcanon, base, false); err == nil {
			err = unix.Symlinkat(hdr.Linkname, pfd, base)
		}
		if err == nil {
			err = a.times(pfd, base, hdr)
		}
	case tar.TypeLink:
		err = a.hardlink(hdr, pfd, pcanon, base)
	case tar.TypeFifo:
		m := a.stripMode(hdr, mode)
		if err = a.replace(pfd, pcanon, base, false); err == nil {
			err = unix.Mknodat(pfd, base, unix.S_IFIFO|m&0o777, 0)
		}
		if err == nil && m&a.umask != 0 {
			err = unix.Fchmodat(pfd, base, m, 0)
		}
	case tar.TypeChar, tar.TypeBlock:
		kind := "character"
		if hdr.Typeflag == tar.TypeBlock {
			kind = "block"
		}
		a.notice(hdr.Name, fmt.Sprintf("%s device node %d:%d skipped: an image may not create devices (the runtime provides /dev)", kind, hdr.Devmajor, hdr.Devminor))
		return nil
	case tar.TypeXGlobalHeader:
		return nil
	default:
		a.notice(hdr.Name, fmt.Sprintf("entry of tar type %q skipped: not a file, directory, link or fifo", string(hdr.Typeflag)))
		return nil
	}
	if err != nil {
		var le *LayerEntryError
		if errors.As(err, &le) {
			return err
		}
		return fmt.Errorf("layer %d: entry %q: %w", a.layer, hdr.Name, err)
	}
	a.markCreated(target)
	return nil
}

// stripMode removes setuid and setgid, saying so.
func (a *applier) stripMode(hdr *tar.Header, mode uint32) uint32 {
	if mode&0o6000 == 0 {
		return mode
	}
	var bits []string
	if mode&0o4000 != 0 {
		bits = append(bits, "setuid")
	}
	if mode&0o2000 != 0 {
		bits = append(bits, "setgid")
	}
	a.notice(hdr.Name, fmt.Sprintf("%s bit removed (mode %04o -> %04o)", strings.Join(bits, " and "), mode, mode&^0o6000))
	return mode &^ 0o6000
}

// replace makes room for a new entry base in pfd: an existing directory is
// kept when keepDir is set (a directory entry over a directory merges),
// anything else is removed, a directory with all it holds.
func (a *applier) replace(pfd int, pcanon, base string, keepDir bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR && keepDir {
		return nil
	}
	return a.remove(pfd, pcanon, base)
}

func (a *applier) mkdir(hdr *tar.Header, pfd int, base, target string, mode uint32) error {
	err := unix.Mkdirat(pfd, base, 0o700|mode&0o777)
	if errors.Is(err, unix.EEXIST) {
		pcanon, _ := splitRel(target)
		if err = a.replace(pfd, pcanon, base, true); err == nil {
			err = unix.Mkdirat(pfd, base, 0o700|mode&0o777)
			if errors.Is(err, unix.EEXIST) { // the directory was kept
				err = nil
			}
		}
	}
	if err != nil {
		return err
	}
	a.dirs[target] = dirMeta{mode: mode, mtime: hdr.ModTime}
	return nil
}

const createFlags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC

func (a *applier) file(hdr *tar.Header, r io.Reader, pfd int, pcanon, base string, mode uint32) error {
	fd, err := unix.Openat(pfd, base, createFlags, mode&0o777)
	if errors.Is(err, unix.EEXIST) {
		if err = a.replace(pfd, pcanon, base, false); err == nil {
			fd, err = unix.Openat(pfd, base, createFlags, mode&0o777)
		}
	}
	if err != nil {
		return err
	}
	err = a.copyTo(fd, r)
	if err == nil && (mode&^0o777 != 0 || mode&a.umask != 0) {
		if cerr := unix.Fchmod(fd, mode); err == nil {
			err = cerr
		}
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return a.times(pfd, base, hdr)
}

// copyTo writes r to fd through the applier's buffer.
func (a *applier) copyTo(fd int, r io.Reader) error {
	for {
		n, rerr := r.Read(a.buf)
		for b := a.buf[:n]; len(b) > 0; {
			w, err := unix.Write(fd, b)
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				return err
			}
			b = b[w:]
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("%w: read tar: %w", core.ErrInvalid, rerr)
		}
	}
}

func (a *applier) times(pfd int, base string, hdr *tar.Header) error {
	if hdr.ModTime.IsZero() {
		return nil
	}
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	return unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// hardlink links base to an entry already in the rootfs. The target is
// resolved inside the rootfs like any path; it must exist and not be a
// directory.
func (a *applier) hardlink(hdr *tar.Header, pfd int, pcanon, base string) error {
	lname, err := a.clean(hdr.Name, hdr.Linkname, "hardlink target")
	if err != nil {
		return err
	}
	if lname == "." {
		return a.refuse(hdr.Name, core.ErrInvalid, "hardlink to the rootfs directory")
	}
	ldir, lbase := splitRel(lname)
	lfd, _, err := a.resolveDir(hdr.Name, ldir, false)
	if errors.Is(err, errNoDir) {
		return a.refuse(hdr.Name, core.ErrInvalid, "hardlink target %q is not in the rootfs", hdr.Linkname)
	}
	if err != nil {
		return err
	}
	var lst unix.Stat_t
	if err := unix.Fstatat(lfd, lbase, &lst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return a.refuse(hdr.Name, core.ErrInvalid, "hardlink target %q is not in the rootfs", hdr.Linkname)
		}
		return err
	}
	if lst.Mode&unix.S_IFMT == unix.S_IFDIR {
		return a.refuse(hdr.Name, core.ErrInvalid, "hardlink to directory %q", hdr.Linkname)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Dev == lst.Dev && st.Ino == lst.Ino {
		return nil // already this file
	}
	if err := a.replace(pfd, pcanon, base, false); err != nil {
		return err
	}
	return unix.Linkat(lfd, lbase, pfd, base, 0)
}

// whiteout applies an OCI whiteout: ".wh.NAME" removes NAME of lower
// layers, ".wh..wh..opq" empties its directory of what lower layers put
// there. What the current layer wrote stays (OCI image spec, "Whiteouts").
func (a *applier) whiteout(entry, dir, base string) error {
	if base == ".wh..wh..opq" {
		pfd, pcanon, err := a.resolveDir(entry, dir, true)
		if err != nil {
			return err
		}
		return a.opaque(entry, pfd, pcanon)
	}
	if strings.HasPrefix(base, ".wh..wh.") {
		return nil // other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs) means nothing here
	}
	victim := strings.TrimPrefix(base, ".wh.")
	if victim == "" || victim == "." || victim == ".." {
		return a.refuse(entry, core.ErrUnsafe, "whiteout of %q would remove its own directory or its parent", victim)
	}
	pfd, pcanon, err := a.resolveDir(entry, dir, false)
	if errors.Is(err, errNoDir) {
		return nil // nothing below to hide
	}
	if err != nil {
		return err
	}
	if a.wasCreated(joinRel(pcanon, victim)) {
		return nil
	}
	if err := a.remove(pfd, pcanon, victim); err != nil {
		return fmt.Errorf("layer %d: whiteout %q: %w", a.layer, entry, err)
	}
	return nil
}

func (a *applier) opaque(entry string, pfd int, pcanon string) error {
	names, err := readDirNames(pfd, ".")
	if err != nil {
		return fmt.Errorf("layer %d: opaque whiteout %q: %w", a.layer, entry, err)
	}
	for _, n := range names {
		if a.wasCreated(joinRel(pcanon, n)) {
			continue
		}
		if err := a.remove(pfd, pcanon, n); err != nil {
			return fmt.Errorf("layer %d: opaque whiteout %q: %w", a.layer, entry, err)
		}
	}
	return nil
}

// finish gives directories their modes and times, deepest first (a
// directory that loses its owner's write or search bit is done after
// everything below it).
func (a *applier) finish() error {
	keys := make([]string, 0, len(a.dirs))
	for k := range a.dirs {
		keys = append(keys, k)
	}
	depth := func(s string) int { return strings.Count(s, "/") }
	sort.Slice(keys, func(i, j int) bool {
		if di, dj := depth(keys[i]), depth(keys[j]); di != dj {
			return di > dj
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		m := a.dirs[k]
		dir, base := splitRel(k)
		pfd, _, err := a.resolveDir(k, dir, false)
		if err != nil {
			return fmt.Errorf("set mode of %q: %w", k, err)
		}
		if err := setDirMeta(pfd, base, m); err != nil {
			return fmt.Errorf("set mode of %q: %w", k, err)
		}
	}
	root := dirMeta{mode: 0o755}
	if a.rootDir != nil {
		root = *a.rootDir
	}
	if err := unix.Fchmod(a.root, root.mode); err != nil {
		return fmt.Errorf("set mode of the rootfs: %w", err)
	}
	if !root.mtime.IsZero() {
		ts := unix.NsecToTimespec(root.mtime.UnixNano())
		return unix.UtimesNanoAt(a.root, ".", []unix.Timespec{ts, ts}, 0)
	}
	return nil
}

func setDirMeta(pfd int, base string, m dirMeta) error {
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = unix.Fchmod(fd, m.mode)
	unix.Close(fd)
	if err != nil || m.mtime.IsZero() {
		return err
	}
	ts := unix.NsecToTimespec(m.mtime.UnixNano())
	return unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// readDirNames lists directory name in dirfd.
func readDirNames(dirfd int, name string) ([]string, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return f.Readdirnames(-1)
}

// removeTree removes name in dirfd and, if it is a directory, all it holds,
// without following any symlink. Directories runprov made read-only are
// made writable first (they belong to the user running runprov).
func removeTree(dirfd int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.Unlinkat(dirfd, name, 0)
	}
	if st.Mode&0o700 != 0o700 {
		unix.Fchmodat(dirfd, name, 0o700, 0) // a directory: just checked, and nobody else writes here
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	for {
		names, err := f.Readdirnames(1024)
		for _, n := range names {
			if err := removeTree(fd, n); err != nil {
				return err
			}
		}
		if err == io.EOF || len(names) == 0 {
			break
		}
		if err != nil {
			return err
		}
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// RemoveAll removes dir and everything in it without following symlinks,
// also when runprov made parts of it read-only (an unpacked rootfs).
func removeAll(dir string) error {
	parent, base := splitRel(strings.TrimRight(dir, "/"))
	if parent == "" && strings.HasPrefix(dir, "/") {
		parent = "/"
	}
	if parent == "" {
		parent = "."
	}
	pfd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	defer unix.Close(pfd)
	return removeTree(pfd, base)
}
