package inventory

import (
	"io/fs"
	"path"
	"strings"

	"github.com/runprov/runprov/core"
)

// dpkgStatus and dpkgStatusD are where dpkg keeps what is installed;
// distroless images have one file per package in status.d.
const (
	dpkgStatus  = "var/lib/dpkg/status"
	dpkgStatusD = "var/lib/dpkg/status.d"
	apkDB       = "lib/apk/db/installed"
)

// readDpkg lists the packages dpkg has installed (or half installed: their
// files are there), as dpkg-query -W does less the ones only their
// configuration files are left of.
func readDpkg(fsys fs.FS, d distro) ([]core.Package, error) {
	files := []string{dpkgStatus}
	if ents, err := fs.ReadDir(fsys, dpkgStatusD); err == nil {
		for _, e := range ents {
			if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), ".md5sums") {
				files = append(files, path.Join(dpkgStatusD, e.Name()))
			}
		}
	}
	ns := d.id
	if ns == "" {
		ns = "debian"
	}
	var out []core.Package
	for _, f := range files {
		data, err := readSmall(fsys, f)
		if err != nil {
			if missing(err) {
				continue
			}
			return nil, err
		}
		for _, st := range stanzas(string(data), ':', keys("Package", "Status", "Version", "Architecture")) {
			if st["Package"] == "" || st["Version"] == "" || !dpkgPresent(st["Status"], f != dpkgStatus) {
				continue
			}
			out = append(out, core.Package{
				Ecosystem: core.EcosystemDeb, Name: st["Package"], Version: st["Version"], Arch: st["Architecture"],
				Location: abs(f),
				PURL:     purl("deb", ns, st["Package"], st["Version"], "arch", st["Architecture"], "distro", d.qualifier()),
			})
		}
	}
	return out, nil
}

// dpkgPresent reports whether a Status field ("install ok installed") says
// the package's files are on disk. status.d entries may have no Status.
func dpkgPresent(status string, statusD bool) bool {
	f := strings.Fields(status)
	if len(f) != 3 {
		return statusD && status == ""
	}
	switch f[2] {
	case "installed", "half-configured", "unpacked", "half-installed", "triggers-awaited", "triggers-pending":
		return true
	}
	return false
}

// readApk lists the packages of Alpine's installed database: stanzas of
// one-letter fields, P name, V version, A architecture, L license.
func readApk(fsys fs.FS, _ distro) ([]core.Package, error) {
	data, err := readSmall(fsys, apkDB)
	if err != nil {
		if missing(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []core.Package
	for _, st := range stanzas(string(data), ':', keys("P", "V", "A", "L")) {
		if st["P"] == "" || st["V"] == "" {
			continue
		}
		out = append(out, core.Package{
			Ecosystem: core.EcosystemApk, Name: st["P"], Version: st["V"], Arch: st["A"], License: st["L"],
			Location: abs(apkDB),
			PURL:     purl("apk", "alpine", st["P"], st["V"], "arch", st["A"]),
		})
	}
	return out, nil
}
