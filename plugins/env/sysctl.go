package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// volatileSysctls change on every read or every boot (counters, random
// ids, per-boot keys) or are recorded elsewhere (the hostname is in
// Environment). Keeping them would give every run its own snapshot.
var volatileSysctls = map[string]bool{
	"fs.aio-nr":                         true,
	"fs.dentry-state":                   true,
	"fs.file-nr":                        true,
	"fs.inode-nr":                       true,
	"fs.inode-state":                    true,
	"kernel.hostname":                   true,
	"kernel.ns_last_pid":                true,
	"kernel.perf_event_max_sample_rate": true, // the kernel lowers it under load
	"kernel.pty.nr":                     true,
	"net.core.netdev_rss_key":           true, // random per boot, and a key
	"net.netfilter.nf_conntrack_count":  true,
}

// volatilePrefixes are whole subtrees left out: random numbers and their
// per-boot id, quota counters, and binfmt_misc (its own file system, often
// an automount that would block the walk).
var volatilePrefixes = []string{"kernel.random.", "fs.quota.", "fs.binfmt_misc."}

// keepSysctl reports whether the dotted name belongs in a snapshot.
func keepSysctl(name string) bool {
	if volatileSysctls[name] || strings.HasSuffix(name, ".stable_secret") {
		return false
	}
	for _, p := range volatilePrefixes {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	// Per-interface settings of veth pairs: containers create and remove
	// them all the time, each with a new name.
	if f := strings.SplitN(name, ".", 5); len(f) >= 4 && f[0] == "net" &&
		(f[2] == "conf" || f[2] == "neigh") && strings.HasPrefix(f[3], "veth") {
		return false
	}
	return true
}

// collectSysctls walks dir (/proc/sys) within budget. It returns every
// world-readable setting that keepSysctl keeps, by dotted name. On timeout
// it returns no values and says where it was.
func collectSysctls(ctx context.Context, dir string, budget time.Duration) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	w := &sysctlWalker{ctx: ctx, root: dir, out: map[string]string{}, sem: make(chan struct{}, sysctlWorkers())}
	w.current.Store(&dir)
	done := make(chan error, 1)
	go func() { done <- w.walk() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// The walker checks ctx between files; a file whose read never
		// returns keeps it busy, and then it is left behind.
		select {
		case err = <-done:
		case <-time.After(50 * time.Millisecond):
			return nil, fmt.Errorf("walk of %s stopped: reading %s did not return within %v", dir, *w.current.Load(), budget)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("walk of %s stopped at %s after %v: %w", dir, *w.current.Load(), budget, err)
		}
		return nil, err
	}
	if len(w.unreadable) > 0 {
		return w.out, fmt.Errorf("%d unreadable: %s", len(w.unreadable), strings.Join(w.unreadable[:min(5, len(w.unreadable))], "; "))
	}
	return w.out, nil
}

// sysctlWorkers is how many directories are walked at once: reading
// /proc/sys is ~1300 open/read/close calls, spread over the CPUs.
func sysctlWorkers() int { return max(2, runtime.NumCPU()) }

// sysctlWalker walks /proc/sys with up to cap(sem) goroutines, one per
// directory while a slot is free, inline otherwise.
type sysctlWalker struct {
	ctx     context.Context
	root    string
	dev     uint64
	sem     chan struct{}
	wg      sync.WaitGroup
	current atomic.Pointer[string]

	mu         sync.Mutex // guards out, unreadable, err
	out        map[string]string
	unreadable []string
	err        error
}

// sysctlScan is one goroutine's share of the walk.
type sysctlScan struct {
	w          *sysctlWalker
	buf        []byte
	out        map[string]string
	unreadable []string
}

func (w *sysctlWalker) walk() error {
	var st unix.Stat_t
	if err := unix.Stat(w.root, &st); err != nil {
		return &os.PathError{Op: "stat", Path: w.root, Err: err}
	}
	w.dev = st.Dev
	fd, err := unix.Open(w.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: w.root, Err: err}
	}
	w.scan(fd, w.root, "")
	w.wg.Wait()
	return w.err
}

// scan walks the directory open at fd (and closes it) in a new
// sysctlScan and merges what it found.
func (w *sysctlWalker) scan(fd int, path, prefix string) {
	sc := &sysctlScan{w: w, buf: make([]byte, 4<<10), out: map[string]string{}}
	err := sc.dir(fd, path, prefix)
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, v := range sc.out {
		w.out[k] = v
	}
	w.unreadable = append(w.unreadable, sc.unreadable...)
	if err != nil && w.err == nil {
		w.err = err
	}
}

// dir walks the directory open at fd, and closes it; prefix is its dotted
// name with a trailing dot. Files and subdirectories are opened relative
// to fd (openat): a path from the root would make the kernel look up,
// and check permissions on, every component of it again, under the
// sysctl table's lock, which the walk's goroutines then contend for.
func (sc *sysctlScan) dir(fd int, path, prefix string) error {
	w := sc.w
	f := os.NewFile(uintptr(fd), path)
	ents, err := f.ReadDir(-1)
	if err != nil {
		f.Close()
		sc.unreadable = append(sc.unreadable, strings.TrimSuffix(prefix, ".")+": "+errText(err))
		return nil
	}
	defer f.Close()
	for _, e := range ents {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		// sysctl(8) shows a dot inside a component (eth0.100) as a slash.
		name := prefix + strings.ReplaceAll(e.Name(), ".", "/")
		switch {
		case e.IsDir():
			if !keepSysctl(name + ".") {
				continue
			}
			// Not another file system mounted here (stat does not
			// trigger an automount; opening it would).
			var st unix.Stat_t
			if err := unix.Fstatat(fd, e.Name(), &st, unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT); err != nil {
				continue // gone since the listing
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Dev != w.dev {
				continue
			}
			p := path + "/" + e.Name()
			sub, err := unix.Openat(fd, e.Name(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				if !errors.Is(err, unix.ENOENT) {
					sc.unreadable = append(sc.unreadable, name+": "+err.Error())
				}
				continue
			}
			select {
			case w.sem <- struct{}{}:
				w.wg.Add(1)
				go func() {
					defer w.wg.Done()
					defer func() { <-w.sem }()
					w.scan(sub, p, name+".")
				}()
			default:
				if err := sc.dir(sub, p, name+"."); err != nil {
					return err
				}
			}
		case e.Type().IsRegular():
			if !keepSysctl(name) {
				continue
			}
			p := path + "/" + e.Name()
			w.current.Store(&p)
			v, ok, err := sc.read(fd, e.Name())
			if err != nil {
				if !errors.Is(err, unix.ENOENT) { // gone since the listing
					sc.unreadable = append(sc.unreadable, name+": "+errText(err))
				}
				continue
			}
			if ok {
				sc.out[name] = v
			}
		}
	}
	return nil
}

// read returns the value of the sysctl file name in the directory open at
// dirfd, without its trailing newline, and false for a file that is not
// world-readable: write-only triggers (vm.drop_caches) and root-only
// files, which are the ones holding secrets. Reading only those gives root
// and unprivileged users the same snapshot. O_NONBLOCK so nothing that
// looks like a pipe can hold the walk. A read that returns less than it
// was offered ends the value: a /proc/sys handler fills the buffer in one
// go (and asking again would run it again for nothing).
func (w *sysctlScan) read(dirfd int, name string) (string, bool, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			var st unix.Stat_t
			if serr := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil && st.Mode&0o004 == 0 {
				return "", false, nil // closed to us and to the world alike
			}
		}
		return "", false, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o004 == 0 {
		return "", false, nil
	}
	n := 0
	for {
		if n == len(w.buf) {
			w.buf = slices.Grow(w.buf, len(w.buf))[:2*len(w.buf)]
		}
		m, err := unix.Read(fd, w.buf[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return "", false, err
		}
		n += m
		if m == 0 || n < len(w.buf) {
			break
		}
	}
	return clean(string(w.buf[:n])), true, nil
}

// errText is the error without the path, which the caller names already.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
