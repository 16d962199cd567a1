package producer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
)

// The root filesystem of a run.
//
// The unpacked image (STORE/rootfs/DIGEST) is shared by every run of the
// image and must never change. A sandbox needs mount points the image may
// lack (/proc, /dev, /tmp, /safe_data, ...), and runc would create them in
// the rootfs. So every run gets an overlay: the shared rootfs as the lower
// layer and a tiny per-run upper layer that receives only the missing
// mount points; the container still sees a read-only root (root.readonly).
//
//   - As root, runprov mounts the overlay on the host at
//     RUNTIME_DIR/RUN/rootfs (default /run/runprov) and creates the mount
//     points there. The directory is outside the store on purpose: runc
//     reaches the rootfs as the container's root, an unprivileged host id,
//     which cannot pass a 0700 store directory (or /root).
//   - As an ordinary user, runc mounts the overlay itself, in the
//     container's user namespace (Linux 5.11+), from the store: there the
//     container's root is the user, who can reach it.
//
// Copying the rootfs per run (slow for large images) and creating the
// mount points in the shared rootfs (it would differ between runs and
// runtimes) were the alternatives.

// target is a mount point the rootfs must have.
type target struct {
	Path string `json:"path"`
	File bool   `json:"file,omitempty"` // a bind of a file
	// Sticky makes a new directory 1777: runc gives a tmpfs the mode of
	// the directory it covers.
	Sticky bool `json:"sticky,omitempty"`
}

// mountTargets returns the mount points of a spec's mounts and the working
// directory; those under /dev live in runc's /dev tmpfs.
func mountTargets(mounts []core.RunMount, cwd string) []target {
	ts := []target{{Path: "/proc"}, {Path: "/dev"}, {Path: "/sys"}}
	for _, m := range mounts {
		file := false
		if m.Source != "" {
			if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
				file = true
			}
		}
		ts = append(ts, target{Path: m.Target, File: file, Sticky: m.Kind == core.MountTmp})
	}
	if cwd != "/" {
		ts = append(ts, target{Path: cwd})
	}
	return ts
}

func checkOverlayPath(p string) error {
	if strings.ContainsAny(p, ",:\\") {
		return fmt.Errorf("overlay path %q: %w: it contains ',', ':' or '\\', which overlayfs options cannot hold; use a store path without them", p, core.ErrUnsupported)
	}
	return nil
}

// mountOverlay mounts the run's rootfs on the host (root only) and makes
// its mount points.
func mountOverlay(pl *execPlan) error {
	for _, p := range []string{pl.Rootfs, pl.RunRoot} {
		if err := checkOverlayPath(p); err != nil {
			return err
		}
	}
	// Reachable (x) by the container's root, not listable.
	if err := os.MkdirAll(filepath.Dir(pl.RunRoot), 0o711); err != nil {
		return fmt.Errorf("runtime directory: %w", err)
	}
	os.Chmod(filepath.Dir(pl.RunRoot), 0o711)
	if err := os.Mkdir(pl.RunRoot, 0o711); err != nil {
		return fmt.Errorf("runtime directory of the run: %w", err)
	}
	// Who owns it, for CleanStale after a runprov killed with SIGKILL.
	if err := os.WriteFile(filepath.Join(pl.RunRoot, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	merged := filepath.Join(pl.RunRoot, "rootfs")
	upper := filepath.Join(pl.RunRoot, "upper")
	work := filepath.Join(pl.RunRoot, "work")
	for _, d := range []string{merged, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	// volatile: the upper directory is thrown away after the run, so its
	// file system need not be synced when the overlay goes (which on a
	// busy disk costs more than the container's start). Kernels before
	// 5.10 do not know the option.
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", pl.Rootfs, upper, work)
	err := unix.Mount("overlay", merged, "overlay", unix.MS_NODEV|unix.MS_NOSUID, opts+",volatile")
	if errors.Is(err, unix.EINVAL) {
		err = unix.Mount("overlay", merged, "overlay", unix.MS_NODEV|unix.MS_NOSUID, opts)
	}
	if err != nil {
		return fmt.Errorf("mount the run's overlay root on %s: %w", merged, err)
	}
	for _, t := range pl.Targets {
		if err := makeInRoot(merged, t); err != nil {
			return err
		}
	}
	return nil
}

// unmountOverlay undoes mountOverlay; it is safe on a half-made one.
func unmountOverlay(pl *execPlan) error {
	if pl.RunRoot == "" {
		return nil
	}
	if err := unmountInputs(pl.RunRoot); err != nil {
		return err // never remove the directory through a mounted input
	}
	merged := filepath.Join(pl.RunRoot, "rootfs")
	if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", merged, err)
	}
	return removeAll(pl.RunRoot)
}

// makeInRoot creates t inside root as the container will see it: symlinks
// in the image resolve inside root (openat2 RESOLVE_IN_ROOT), so a link in
// the image can never make runprov create something on the host.
func makeInRoot(root string, t target) error {
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	how := func(flags uint64) *unix.OpenHow {
		return &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	}
	parts := strings.Split(strings.Trim(path.Clean(t.Path), "/"), "/")
	cur := "."
	for i, part := range parts {
		if part == "" {
			continue
		}
		last := i == len(parts)-1
		next := path.Join(cur, part)
		fd, err := unix.Openat2(rootfd, next, how(unix.O_PATH))
		if err == nil {
			var st unix.Stat_t
			err = unix.Fstat(fd, &st)
			unix.Close(fd)
			if err != nil {
				return err
			}
			isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
			if (!last || !t.File) && !isDir {
				return fmt.Errorf("mount point %s: %w: /%s is not a directory in the image", t.Path, core.ErrInvalid, next)
			}
			if last && t.File && isDir {
				return fmt.Errorf("mount point %s: %w: a file is bound there but the image has a directory", t.Path, core.ErrInvalid)
			}
			cur = next
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("mount point %s: %w", t.Path, err)
		}
		pfd, err := unix.Openat2(rootfd, cur, how(unix.O_PATH|unix.O_DIRECTORY))
		if err != nil {
			return fmt.Errorf("mount point %s: %w", t.Path, err)
		}
		if last && t.File {
			var fd int
			fd, err = unix.Openat(pfd, part, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
			if err == nil {
				unix.Close(fd)
			}
		} else {
			err = unix.Mkdirat(pfd, part, 0o755)
			if err == nil && last && t.Sticky {
				err = unix.Fchmodat(pfd, part, 0o1777, 0)
			}
		}
		unix.Close(pfd)
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mount point %s: %w: /%s is a symlink to a missing path in the image", t.Path, core.ErrInvalid, next)
		}
		if err != nil {
			return fmt.Errorf("mount point %s: %w", t.Path, err)
		}
		cur = next
	}
	return nil
}

// removeAll removes a tree, making read-only directories writable first
// (overlayfs leaves a 000 work directory).
func removeAll(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// owners changes who owns the directories a run writes to: the Runfile's
// USER (as mapped on the host) during the run, the user who ran runprov
// after it. As root that is chown; an ordinary user cannot chown to or
// from a subordinate id, so it is done in a user namespace with the same
// map as the run's (unshare(1) with newuidmap).
type owners struct {
	rootless bool
	idmap    runtime.IDMap
	same     bool // the run writes as the runprov user: nothing to change
}

// give makes dirs belong to the run's USER.
func (o owners) give(dirs []string, uid, gid int, containerUID, containerGID uint32) error {
	if len(dirs) == 0 || o.same {
		return nil
	}
	if !o.rootless {
		for _, d := range dirs {
			if err := os.Chown(d, uid, gid); err != nil {
				return fmt.Errorf("hand %s to the run's user: %w", d, err)
			}
		}
		return nil
	}
	return o.inNamespace(append([]string{"chown", fmt.Sprintf("%d:%d", containerUID, containerGID)}, dirs...))
}

// takeBack gives every file under dirs back to the user running runprov.
func (o owners) takeBack(dirs []string) error {
	if len(dirs) == 0 || o.same {
		return nil
	}
	if !o.rootless {
		uid, gid := os.Getuid(), os.Getgid()
		for _, d := range dirs {
			err := filepath.WalkDir(d, func(p string, _ fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				return os.Lchown(p, uid, gid)
			})
			if err != nil {
				return fmt.Errorf("take back %s from the run's user: %w", d, err)
			}
		}
		return nil
	}
	return o.inNamespace(append([]string{"chown", "-R", "-h", "0:0"}, dirs...))
}

// release removes the scratch directories and gives the outputs back to
// the user running runprov. Without root, one helper in the run's user
// namespace gives both back (each helper is a process start and two
// newuidmap calls), then the scratch directories are removed as the user.
func (o owners) release(scratch, outputs []string) error {
	if o.rootless && !o.same && len(scratch) > 0 {
		err := o.takeBack(append(slices.Clone(scratch), outputs...))
		return errors.Join(err, removeScratch(scratch))
	}
	return errors.Join(removeScratch(scratch), o.takeBack(outputs))
}

// removeScratch deletes the scratch directories of a run, which the
// caller can already remove.
func removeScratch(dirs []string) error {
	var errs []error
	for _, d := range dirs {
		errs = append(errs, removeAll(d))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove scratch: %w", err)
	}
	return nil
}

// inNamespace runs argv as root of a user namespace mapped like the run.
func (o owners) inNamespace(argv []string) error {
	args := []string{"--user", "--map-root-user"}
	for _, m := range o.idmap.UIDs[1:] {
		args = append(args, fmt.Sprintf("--map-users=%d,%d,%d", m.HostID, m.ContainerID, m.Size))
	}
	for _, m := range o.idmap.GIDs[1:] {
		args = append(args, fmt.Sprintf("--map-groups=%d,%d,%d", m.HostID, m.ContainerID, m.Size))
	}
	out, err := exec.Command("unshare", append(append(args, "--"), argv...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s in the run's user namespace: %w: %s (rootless runs need unshare and newuidmap: apt-get install util-linux uidmap)",
			argv[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}
