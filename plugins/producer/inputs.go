package producer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
)

// Inputs need not be readable by everyone. The run's USER is an
// unprivileged host id, not the analyst who owns the data, so a private
// (0700) input would be unreadable in the container. As root, each input
// is bound through an idmapped mount that shows the files of the input's
// owner as the USER's; the host's permissions stay as they are. An
// ordinary user cannot idmap the host's file systems (the kernel wants
// CAP_SYS_ADMIN over them), and some file systems refuse it: then the
// input must be readable by others, or the run is refused before it
// starts, rather than run on data it cannot read.

// idmappedInput is an input bound through an idmapped mount at Target
// (under the run's runtime directory), which the spec binds instead.
type idmappedInput struct {
	Source string          `json:"source"`
	Target string          `json:"target"`
	File   bool            `json:"file,omitempty"`
	Shift  runtime.IDShift `json:"shift"`
}

// planInputs decides how each input of the run reaches its USER and
// returns the host paths the spec binds instead of the inputs' own.
func planInputs(pl *execPlan, mounts []core.RunMount, sameOwner bool) (map[string]string, error) {
	sources := map[string]string{}
	if sameOwner {
		return sources, nil // the USER is the runprov user
	}
	seen := map[string]bool{}
	for _, m := range mounts {
		if m.Kind != core.MountInput || seen[m.Source] {
			continue
		}
		seen[m.Source] = true
		fi, err := os.Stat(m.Source)
		if err != nil {
			return nil, fmt.Errorf("--input %s=%s: %w", m.Name, m.Source, err)
		}
		var idErr error
		if pl.RunRoot != "" { // root: idmap it
			st := fi.Sys().(*syscall.Stat_t)
			in := idmappedInput{Source: m.Source, File: !fi.IsDir(),
				Target: filepath.Join(pl.RunRoot, "inputs", strconv.Itoa(len(pl.IDMapped))),
				Shift:  runtime.IDShift{FromUID: int(st.Uid), FromGID: int(st.Gid), ToUID: pl.HostUID, ToGID: pl.HostGID}}
			if idErr = runtime.IDMappedBind(m.Source, "", in.Shift); idErr == nil {
				pl.IDMapped = append(pl.IDMapped, in)
				sources[m.Source] = in.Target
				continue
			}
		}
		if err := readableBy(m.Source, pl.HostUID, pl.HostGID); err != nil {
			why := "runprov runs without root, and only root can idmap the host's file systems; make the input readable by others (chmod -R o+rX) or run as root"
			if idErr != nil {
				why = fmt.Sprintf("its file system cannot be idmapped here (%v); make the input readable by others (chmod -R o+rX) or put it on a local file system", idErr)
			}
			return nil, fmt.Errorf("--input %s=%s: %w: the run's user (host id %d) could not read it: %w; %s",
				m.Name, m.Source, core.ErrUnsupported, pl.HostUID, err, why)
		}
	}
	return sources, nil
}

// readableBy walks root and returns an error naming the first directory
// uid:gid cannot list and enter, or file it cannot read. Symlinks are not
// followed (the container resolves them in its own tree).
func readableBy(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		perm := uint32(fi.Mode().Perm())
		shift := 0 // others
		switch {
		case int(st.Uid) == uid:
			shift = 6
		case int(st.Gid) == gid:
			shift = 3
		}
		want := uint32(4)
		if d.IsDir() {
			want = 5
		} else if !fi.Mode().IsRegular() {
			return nil
		}
		if (perm>>shift)&want != want {
			return fmt.Errorf("%s has mode %04o", p, perm)
		}
		return nil
	})
}

// mountInputs makes the idmapped input mounts of a root run; its runtime
// directory exists (mountOverlay).
func mountInputs(pl *execPlan) error {
	if len(pl.IDMapped) == 0 {
		return nil
	}
	if err := os.Mkdir(filepath.Join(pl.RunRoot, "inputs"), 0o711); err != nil {
		return fmt.Errorf("runtime directory of the inputs: %w", err)
	}
	for _, in := range pl.IDMapped {
		var err error
		if in.File {
			err = os.WriteFile(in.Target, nil, 0o600)
		} else {
			err = os.Mkdir(in.Target, 0o700)
		}
		if err != nil {
			return err
		}
		if err := runtime.IDMappedBind(in.Source, in.Target, in.Shift); err != nil {
			return fmt.Errorf("bind input %s: %w", in.Source, err)
		}
	}
	return nil
}

// unmountInputs undoes mountInputs for the runtime directory runRoot. It
// must succeed before runRoot is removed: removing through a mounted input
// would reach the analyst's data.
func unmountInputs(runRoot string) error {
	dir := filepath.Join(runRoot, "inputs")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unmount the inputs: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount input %s: %w", p, err)
		}
	}
	return nil
}
