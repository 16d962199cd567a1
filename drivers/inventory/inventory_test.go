package inventory

import (
	"context"
	"database/sql"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runprov/runprov/core"
)

// brief is a package without the fields a case does not pin down.
type brief struct{ eco, name, version, purl, location string }

func briefs(ps []core.Package) []brief {
	var out []brief
	for _, p := range ps {
		out = append(out, brief{p.Ecosystem, p.Name, p.Version, p.PURL, p.Location})
	}
	return out
}

func TestReadEcosystems(t *testing.T) {
	cases := []struct {
		dir  string
		want []brief
	}{
		{"debian", []brief{
			{"deb", "bash", "5.2.15-2+b2", "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12", "/var/lib/dpkg/status"},
			{"deb", "libc6", "2.36-9+deb12u4", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12", "/var/lib/dpkg/status"},
			{"deb", "python3-numpy", "1:1.24.2-1", "pkg:deb/debian/python3-numpy@1:1.24.2-1?arch=amd64&distro=debian-12", "/var/lib/dpkg/status"},
			{"pypi", "numpy", "1.24.2", "pkg:pypi/numpy@1.24.2", "/usr/lib/python3/dist-packages/numpy-1.24.2.dist-info"},
		}},
		{"alpine", []brief{
			{"apk", "busybox", "1.36.1-r15", "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64", "/lib/apk/db/installed"},
			{"apk", "musl", "1.2.4_git20230717-r4", "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64", "/lib/apk/db/installed"},
		}},
		{"python", []brief{
			{"pypi", "Foo_Bar", "2.0", "pkg:pypi/foo-bar@2.0", "/usr/local/lib/python3.11/site-packages/Foo_Bar-2.0.dist-info"},
			{"pypi", "chardet", "4.0.0", "pkg:pypi/chardet@4.0.0", "/usr/lib/python3/dist-packages/chardet-4.0.0.egg-info"},
			{"pypi", "six", "1.16.0", "pkg:pypi/six@1.16.0", "/usr/lib/python3/dist-packages/six-1.16.0.egg-info"},
		}},
		{"r", []brief{
			{"cran", "BiocGenerics", "0.50.0", "pkg:bioconductor/BiocGenerics@0.50.0", "/usr/lib/R/library/BiocGenerics"},
			{"cran", "ggplot2", "3.5.1", "pkg:cran/ggplot2@3.5.1", "/usr/local/lib/R/site-library/ggplot2"},
		}},
		{"conda", []brief{
			{"conda", "numpy", "1.26.4", "pkg:conda/numpy@1.26.4?build=py311h64a7726_0&channel=conda-forge&subdir=linux-64", "/opt/conda/conda-meta/numpy-1.26.4-py311h64a7726_0.json"},
		}},
	}
	for _, c := range cases {
		t.Run(c.dir, func(t *testing.T) {
			got, err := Read(context.Background(), filepath.Join("testdata", c.dir))
			if err != nil {
				t.Fatal(err)
			}
			if b := briefs(got); !slices.Equal(b, c.want) {
				t.Errorf("got\n%q\nwant\n%q", b, c.want)
			}
		})
	}
}

// rpmHeaderBlob builds an RPM header blob of string and int32 entries.
func rpmHeaderBlob(strs map[uint32]string, epoch uint32) []byte {
	var entries, data []byte
	add := func(tag, typ uint32, v []byte) {
		e := make([]byte, 16)
		binary.BigEndian.PutUint32(e, tag)
		binary.BigEndian.PutUint32(e[4:], typ)
		binary.BigEndian.PutUint32(e[8:], uint32(len(data)))
		binary.BigEndian.PutUint32(e[12:], 1)
		entries = append(entries, e...)
		data = append(data, v...)
	}
	for _, tag := range []uint32{rpmTagName, rpmTagVersion, rpmTagRelease, rpmTagArch, rpmTagLicense} {
		add(tag, rpmTypeString, append([]byte(strs[tag]), 0))
	}
	for len(data)%4 != 0 {
		data = append(data, 0)
	}
	if epoch > 0 {
		add(rpmTagEpoch, rpmTypeInt32, binary.BigEndian.AppendUint32(nil, epoch))
	}
	head := binary.BigEndian.AppendUint32(nil, uint32(len(entries)/16))
	head = binary.BigEndian.AppendUint32(head, uint32(len(data)))
	return append(append(head, entries...), data...)
}

func TestReadRPM(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "var/lib/rpm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=\"rocky\"\nVERSION_ID=\"9.3\"\n"), 0o644)
	db, err := sql.Open("sqlite", filepath.Join(dir, "rpmdb.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)`)
	for _, b := range [][]byte{
		rpmHeaderBlob(map[uint32]string{rpmTagName: "bash", rpmTagVersion: "5.1.8", rpmTagRelease: "6.el9", rpmTagArch: "x86_64", rpmTagLicense: "GPLv3+"}, 0),
		rpmHeaderBlob(map[uint32]string{rpmTagName: "openssl-libs", rpmTagVersion: "3.0.7", rpmTagRelease: "24.el9", rpmTagArch: "x86_64"}, 1),
		[]byte("garbage"),
	} {
		if err == nil {
			_, err = db.Exec(`INSERT INTO Packages(blob) VALUES(?)`, b)
		}
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	got, err := Read(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	want := []brief{
		{"rpm", "bash", "5.1.8-6.el9", "pkg:rpm/rocky/bash@5.1.8-6.el9?arch=x86_64&distro=rocky-9.3", "/var/lib/rpm/rpmdb.sqlite"},
		{"rpm", "openssl-libs", "1:3.0.7-24.el9", "pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=rocky-9.3&epoch=1", "/var/lib/rpm/rpmdb.sqlite"},
	}
	if b := briefs(got); !slices.Equal(b, want) {
		t.Errorf("got\n%q\nwant\n%q", b, want)
	}
}

// TestReadStaysInRoot: symlinks in the image that point at host files
// (absolute, or climbing out) are not read.
func TestReadStaysInRoot(t *testing.T) {
	outside := t.TempDir()
	host := filepath.Join(outside, "status")
	os.WriteFile(host, []byte("Package: hostpkg\nStatus: install ok installed\nVersion: 1\n"), 0o644)
	meta := filepath.Join(outside, "evil-1.0.dist-info")
	os.MkdirAll(meta, 0o755)
	os.WriteFile(filepath.Join(meta, "METADATA"), []byte("Name: evil\nVersion: 1.0\n"), 0o644)

	root := filepath.Join(t.TempDir(), "rootfs")
	os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755)
	os.MkdirAll(filepath.Join(root, "lib/apk/db"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/lib/python3/dist-packages/link-1.0.dist-info"), 0o755)
	for link, target := range map[string]string{
		"var/lib/dpkg/status":                                       host,
		"lib/apk/db/installed":                                      "../../../../" + filepath.Base(outside) + "/status",
		"usr/lib/python3/dist-packages/evil-1.0.dist-info":          meta,
		"usr/lib/python3/dist-packages/link-1.0.dist-info/METADATA": filepath.Join(meta, "METADATA"),
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Read(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("read through symlinks out of the root: %v", got)
	}
}
