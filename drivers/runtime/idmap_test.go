package runtime

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runprov/runprov/core"
)

// writeSubIDs writes an /etc/subuid-style file to a temporary directory.
func writeSubIDs(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "subid")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSubIDs(t *testing.T) {
	for _, c := range []struct {
		name, content string
		want          []subRange
	}{
		{"several ranges of the user, in file order",
			"alice:100000:10\nbob:200000:65536\nalice:300000:65536\n",
			[]subRange{{100000, 10}, {300000, 65536}}},
		{"matched by numeric uid",
			"1000:400000:65536\n1001:500000:65536\n",
			[]subRange{{400000, 65536}}},
		{"name and numeric uid both count",
			"1000:400000:5\nalice:100000:7\n",
			[]subRange{{400000, 5}, {100000, 7}}},
		{"other users, prefixes of the name and malformed lines are skipped",
			"alicex:1:100\nalic:2:100\nbob:3:100\nalice:x:10\nalice:5:0\nalice:6:7:8\nalice:9\n  alice:700000:3  \n",
			[]subRange{{700000, 3}}},
		{"no entry", "bob:100000:65536\n", nil},
		{"empty file", "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := subIDs(writeSubIDs(t, c.content), "alice", "1000")
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("subIDs = %v, %v; want %v", got, err, c.want)
			}
		})
	}
	_, err := subIDs(filepath.Join(t.TempDir(), "missing"), "alice", "1000")
	if !errors.Is(err, core.ErrUnsupported) || !strings.Contains(err.Error(), "usermod --add-subuids") || !strings.Contains(err.Error(), "alice") {
		t.Errorf("missing file: %v", err)
	}
}

func TestRootlessMap(t *testing.T) {
	for _, c := range []struct {
		name   string
		want   uint32
		ranges []subRange
		maps   []specs.LinuxIDMapping
		host   int
		errHas string // "" = no error
	}{
		{"USER 0 is the user itself", 0, []subRange{{100000, 65536}},
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65535}}, 1000, ""},
		{"one full range", 65534, []subRange{{100000, 65536}},
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65535}}, 100000 + 65533, ""},
		{"several ranges: USER in the first", 5, []subRange{{100000, 10}, {300000, 65536}},
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 10}, {ContainerID: 11, HostID: 300000, Size: 65525}}, 100004, ""},
		{"several ranges: USER in the second", 20, []subRange{{100000, 10}, {300000, 65536}},
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 10}, {ContainerID: 11, HostID: 300000, Size: 65525}}, 300009, ""},
		{"ranges beyond IDRange are not used", 3, []subRange{{100000, 65535}, {900000, 100}},
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65535}}, 100002, ""},
		{"too few ids for USER", 1234, []subRange{{100000, 10}, {200000, 5}}, nil, 0, "gives alice only 15 subordinate uids"},
		{"no entry", 65534, nil, nil, 0, "gives alice only 0 subordinate uids"},
	} {
		t.Run(c.name, func(t *testing.T) {
			maps, host, err := rootlessMap(1000, c.want, c.ranges, "uid", "/etc/subuid", "alice")
			if c.errHas != "" {
				if !errors.Is(err, core.ErrUnsupported) || !strings.Contains(err.Error(), c.errHas) ||
					!strings.Contains(err.Error(), "/etc/subuid") || !strings.Contains(err.Error(), "usermod --add-subuids 100000-165535 alice") {
					t.Errorf("rootlessMap = %v, %d, %v; want ErrUnsupported with %q, the file and the usermod command", maps, host, err, c.errHas)
				}
				return
			}
			if err != nil || host != c.host || !reflect.DeepEqual(maps, c.maps) {
				t.Errorf("rootlessMap = %+v, %d, %v; want %+v, %d", maps, host, err, c.maps, c.host)
			}
		})
	}
}

// TestRootlessIDMap reads subuid and subgid files of the current user,
// named by name in one and by numeric uid in the other.
func TestRootlessIDMap(t *testing.T) {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	self, selfG := uint32(os.Getuid()), uint32(os.Getgid())
	subuid := writeSubIDs(t, "someone-else:1:65536\n"+u.Username+":100000:100\n"+u.Username+":200000:65536\n")
	subgid := writeSubIDs(t, u.Uid+":400000:65536\n")
	m, err := RootlessIDMap(150, 7, subuid, subgid)
	if err != nil {
		t.Fatal(err)
	}
	wantU := []specs.LinuxIDMapping{{ContainerID: 0, HostID: self, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 100}, {ContainerID: 101, HostID: 200000, Size: 65435}}
	wantG := []specs.LinuxIDMapping{{ContainerID: 0, HostID: selfG, Size: 1}, {ContainerID: 1, HostID: 400000, Size: 65535}}
	if !m.Rootless || m.UserName != u.Username || !reflect.DeepEqual(m.UIDs, wantU) || !reflect.DeepEqual(m.GIDs, wantG) ||
		m.HostUID != 200000+49 || m.HostGID != 400006 {
		t.Errorf("RootlessIDMap = %+v", m)
	}

	// No entry for the user in subgid: the USER's gid has no host id.
	_, err = RootlessIDMap(150, 7, subuid, writeSubIDs(t, "someone-else:400000:65536\n"))
	if !errors.Is(err, core.ErrUnsupported) || !strings.Contains(err.Error(), "USER gid 7") || !strings.Contains(err.Error(), "only 0 subordinate gids") ||
		!strings.Contains(err.Error(), "usermod --add-subgids 100000-165535 "+u.Username) {
		t.Errorf("no subgid entry: %v", err)
	}
	// Too few subordinate uids for the USER.
	_, err = RootlessIDMap(1000, 7, writeSubIDs(t, u.Username+":100000:100\n"), subgid)
	if !errors.Is(err, core.ErrUnsupported) || !strings.Contains(err.Error(), "USER uid 1000") || !strings.Contains(err.Error(), "only 100 subordinate uids") {
		t.Errorf("too few subuids: %v", err)
	}
	// A missing file.
	_, err = RootlessIDMap(150, 7, filepath.Join(t.TempDir(), "subuid"), subgid)
	if !errors.Is(err, core.ErrUnsupported) || !strings.Contains(err.Error(), "usermod --add-subuids") {
		t.Errorf("missing subuid file: %v", err)
	}
}
