package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrIDMapUnsupported is an idmapped mount the kernel or the file system
// refuses (no mount_setattr, a file system without idmap support, or no
// privilege over it: an ordinary user never has it over the host's file
// systems).
var ErrIDMapUnsupported = errors.New("idmapped mounts not supported here")

// IDShift makes the files of one owner (host uid and gid FromUID, FromGID)
// appear owned by ToUID, ToGID through an idmapped mount. Other owners'
// files appear owned by nobody (so only their "others" bits count).
type IDShift struct {
	FromUID, FromGID int
	ToUID, ToGID     int
}

// IDMappedBind mounts src at dst (an existing directory, or file when src
// is a file) read-only, nosuid, nodev and idmapped by shift, without
// changing anything on src: a run's USER reads the analyst's private
// (0700, 0600) inputs as their owner. With dst "" it only checks that src
// can be mounted so (the clone is dropped). Errors wrap
// ErrIDMapUnsupported when the kernel or the file system refuses it.
func IDMappedBind(src, dst string, shift IDShift) error {
	ns, err := sharedUserNamespace(shift)
	if err != nil {
		return err
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w: %w", src, ErrIDMapUnsupported, err)
	}
	defer unix.Close(fd)
	attr := &unix.MountAttr{
		Attr_set:  unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV,
		Userns_fd: uint64(ns.Fd()),
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("idmap %s: %w: %w", src, ErrIDMapUnsupported, err)
	}
	if dst == "" {
		return nil
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount %s on %s: %w", src, dst, err)
	}
	return nil
}

// userNamespaces are the namespaces this process made, by shift, kept
// open until it exits: a run asks for the same one when it checks an input
// and when it mounts it, and making one costs a process.
var userNamespaces = struct {
	sync.Mutex
	m map[IDShift]*os.File
}{m: map[IDShift]*os.File{}}

func sharedUserNamespace(shift IDShift) (*os.File, error) {
	userNamespaces.Lock()
	defer userNamespaces.Unlock()
	if ns := userNamespaces.m[shift]; ns != nil {
		return ns, nil
	}
	ns, err := userNamespace(shift)
	if err != nil {
		return nil, err
	}
	userNamespaces.m[shift] = ns
	return ns, nil
}

// userNamespace returns a user namespace (an open /proc/PID/ns/user) whose
// map is shift: a short-lived process is made in it and the namespace
// outlives it through the open file.
func userNamespace(shift IDShift) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	defer w.Close()
	cat, err := exec.LookPath("cat")
	if err != nil {
		return nil, fmt.Errorf("user namespace for an idmapped mount: %w", err)
	}
	cmd := exec.Command(cat)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: shift.FromUID, HostID: shift.ToUID, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: shift.FromGID, HostID: shift.ToGID, Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("user namespace for an idmapped mount: %w: %w", ErrIDMapUnsupported, err)
	}
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	w.Close() // cat ends
	cmd.Wait()
	if err != nil {
		return nil, fmt.Errorf("user namespace for an idmapped mount: %w", err)
	}
	return ns, nil
}
