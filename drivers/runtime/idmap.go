package runtime

import (
	"bufio"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runprov/runprov/core"
)

// HostIDBase is where container id 0 lands on the host when runprov runs
// as root: container ids 0..IDRange-1 are host ids HostIDBase.. onward.
// It lies far above the ranges useradd hands out in /etc/subuid (100000 in
// steps of 65536), so no local user's rootless containers share these ids.
const HostIDBase = 1_000_000_000

// IDRange is how many container ids a run maps: a USER must be below it.
const IDRange = 65536

// IDMap is the user namespace of a run: the mappings and, for the
// producer, the host ids the Runfile's USER becomes (it owns what the run
// writes into its outputs, scratch and volumes).
type IDMap struct {
	UIDs, GIDs       []specs.LinuxIDMapping
	HostUID, HostGID int // USER on the host
	Rootless         bool
	UserName         string // the user whose subordinate ids a rootless map uses
}

// RootIDMap maps container 0..IDRange-1 to HostIDBase.. (runprov runs as root).
func RootIDMap(uid, gid uint32) (IDMap, error) {
	if uid >= IDRange || gid >= IDRange {
		return IDMap{}, fmt.Errorf("USER %d:%d: %w: a run maps container ids 0-%d; choose a USER below %d", uid, gid, core.ErrUnsupported, IDRange-1, IDRange)
	}
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: HostIDBase, Size: IDRange}}
	return IDMap{UIDs: m, GIDs: m, HostUID: HostIDBase + int(uid), HostGID: HostIDBase + int(gid)}, nil
}

// RootlessIDMap is the map of an ordinary user: container 0 is the user
// (so the runtime can reach the user's files), USER and every other
// container id come from the user's subordinate ranges in /etc/subuid and
// /etc/subgid, set up by newuidmap/newgidmap. subuid and subgid name the
// files ("" = /etc/subuid, /etc/subgid).
func RootlessIDMap(uid, gid uint32, subuid, subgid string) (IDMap, error) {
	if subuid == "" {
		subuid = "/etc/subuid"
	}
	if subgid == "" {
		subgid = "/etc/subgid"
	}
	u, err := user.Current()
	if err != nil {
		return IDMap{}, fmt.Errorf("rootless run: who am I: %w", err)
	}
	m := IDMap{Rootless: true, UserName: u.Username}
	us, err := subIDs(subuid, u.Username, u.Uid)
	if err != nil {
		return IDMap{}, err
	}
	gs, err := subIDs(subgid, u.Username, u.Uid)
	if err != nil {
		return IDMap{}, err
	}
	var hu, hg int
	if m.UIDs, hu, err = rootlessMap(os.Getuid(), uid, us, "uid", subuid, u.Username); err != nil {
		return IDMap{}, err
	}
	if m.GIDs, hg, err = rootlessMap(os.Getgid(), gid, gs, "gid", subgid, u.Username); err != nil {
		return IDMap{}, err
	}
	m.HostUID, m.HostGID = hu, hg
	return m, nil
}

type subRange struct{ start, count uint32 }

// subIDs reads the ranges of name (or its numeric id) from an /etc/subuid
// style file.
func subIDs(file, name, id string) ([]subRange, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("rootless run: %w: %v; ask an administrator for subordinate ids: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s", core.ErrUnsupported, err, name)
	}
	defer f.Close()
	var out []subRange
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(parts) != 3 || (parts[0] != name && parts[0] != id) {
			continue
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 == nil && err2 == nil && count > 0 {
			out = append(out, subRange{uint32(start), uint32(count)})
		}
	}
	return out, sc.Err()
}

// rootlessMap maps container 0 to self and container 1..IDRange-1 from the
// subordinate ranges, in order; it returns the host id of want.
func rootlessMap(self int, want uint32, ranges []subRange, kind, file, name string) ([]specs.LinuxIDMapping, int, error) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(self), Size: 1}}
	next := uint32(1)
	host := -1
	if want == 0 {
		host = self
	}
	for _, r := range ranges {
		if next >= IDRange {
			break
		}
		n := min(r.count, IDRange-next)
		m = append(m, specs.LinuxIDMapping{ContainerID: next, HostID: r.start, Size: n})
		if want >= next && want < next+n {
			host = int(r.start + (want - next))
		}
		next += n
	}
	if host < 0 {
		return nil, 0, fmt.Errorf("rootless run: USER %s %d: %w: %s gives %s only %d subordinate %ss; the run needs %d: ask an administrator to run: usermod --add-sub%ss 100000-165535 %s",
			kind, want, core.ErrUnsupported, file, name, next-1, kind, IDRange-1, kind, name)
	}
	return m, host, nil
}
