package env

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"

	"github.com/runprov/runprov/core"
)

// The record types, from core so drivers can store them without this package.
type (
	Environment  = core.Environment
	RuntimeInfo  = core.RuntimeInfo
	SystemKernel = core.SystemKernel
	GPUInfo      = core.GPUInfo
	GPUDevice    = core.GPUDevice
)

// CollectEnvironment returns who runs this process and where: the real uid,
// the effective gid, the user name, the supplementary groups (sorted) and
// the hostname, as DSI's Environment and Hostname plugins record them. A
// user missing from the user database gets an empty name, not an error; an
// error means the groups or the hostname could not be read (the rest of the
// returned Environment is still filled).
func CollectEnvironment() (Environment, error) {
	e := Environment{UID: os.Getuid(), GID: os.Getegid()}
	if u, err := user.LookupId(strconv.Itoa(e.UID)); err == nil {
		e.User = u.Username
	}
	var errs []error
	groups, err := os.Getgroups()
	if err != nil {
		errs = append(errs, fmt.Errorf("read groups: %w", err))
	}
	slices.Sort(groups)
	e.Groups = slices.Compact(groups)
	if e.Groups == nil {
		e.Groups = []int{}
	}
	if e.Hostname, err = os.Hostname(); err != nil {
		errs = append(errs, fmt.Errorf("read hostname: %w", err))
	}
	return e, errors.Join(errs...)
}
