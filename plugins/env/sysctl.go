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
	"syscall"
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
	if _, err := os.ReadDir(w.root); err != nil {
		return err
	}
	w.scan(w.root, "")
	w.wg.Wait()
	return w.err
}

// scan walks path in a new sysctlScan and merges what it found.
func (w *sysctlWalker) scan(path, prefix string) {
	sc := &sysctlScan{w: w, buf: make([]byte, 4<<10), out: map[string]string{}}
	err := sc.dir(path, prefix)
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

// dir walks one directory; prefix is its dotted name with a trailing dot.
func (sc *sysctlScan) dir(path, prefix string) error {
	w := sc.w
	ents, err := os.ReadDir(path)
	if err != nil {
		sc.unreadable = append(sc.unreadable, strings.TrimSuffix(prefix, ".")+": "+errText(err))
		return nil
	}
	for _, e := range ents {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		// sysctl(8) shows a dot inside a component (eth0.100) as a slash.
		name := prefix + strings.ReplaceAll(e.Name(), ".", "/")
		p := path + "/" + e.Name()
		switch {
		case e.IsDir():
			if !keepSysctl(name + ".") {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue // gone since the listing
			}
			if st, ok := info.Sys().(*syscall.Stat_t); !ok || uint64(st.Dev) != w.dev {
				continue // another file system mounted here
			}
			select {
			case w.sem <- struct{}{}:
				w.wg.Add(1)
				go func() {
					defer w.wg.Done()
					defer func() { <-w.sem }()
					w.scan(p, name+".")
				}()
			default:
				if err := sc.dir(p, name+"."); err != nil {
					return err
				}
			}
		case e.Type().IsRegular():
			if !keepSysctl(name) {
				continue
			}
			w.current.Store(&p)
			v, ok, err := sc.read(p)
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

// read returns a sysctl file's value without its trailing newline, and
// false for a file that is not world-readable: write-only triggers
// (vm.drop_caches) and root-only files, which are the ones holding secrets.
// Reading only those gives root and unprivileged users the same snapshot.
// O_NONBLOCK so nothing that looks like a pipe can hold the walk.
func (w *sysctlScan) read(path string) (string, bool, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			if st, serr := os.Lstat(path); serr == nil && st.Mode().Perm()&0o004 == 0 {
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
		if m == 0 {
			break
		}
		n += m
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
