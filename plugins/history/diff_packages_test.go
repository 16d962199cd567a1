package history

import (
	"reflect"
	"testing"

	"github.com/runprov/runprov/core"
)

func TestComparePackages(t *testing.T) {
	pk := func(eco, name, version, loc string) core.Package {
		return core.Package{Ecosystem: eco, Name: name, Version: version, Location: loc}
	}
	a := []core.Package{
		pk("deb", "bash", "5.2-1", "/var/lib/dpkg/status"),
		pk("pypi", "numpy", "1.24.2", "/usr/lib/python3/dist-packages/numpy-1.24.2.dist-info"),
		pk("pypi", "six", "1.16.0", "/x"),
		pk("pypi", "scipy", "1.10", "/a"), pk("pypi", "scipy", "1.11", "/b"),
	}
	b := []core.Package{
		pk("deb", "bash", "5.2-1", "/var/lib/dpkg/status"),
		pk("pypi", "numpy", "1.26.4", "/usr/lib/python3/dist-packages/numpy-1.26.4.dist-info"),
		pk("pypi", "pandas", "2.2.0", "/y"),
		pk("pypi", "scipy", "1.11", "/b"), pk("pypi", "scipy", "1.10", "/a"),
	}
	want := PackagesDiff{
		Added:   []PackageChange{{Ecosystem: "pypi", Name: "pandas", B: "2.2.0"}},
		Removed: []PackageChange{{Ecosystem: "pypi", Name: "six", A: "1.16.0"}},
		Changed: []PackageChange{{Ecosystem: "pypi", Name: "numpy", A: "1.24.2", B: "1.26.4"}},
		Same:    2,
	}
	if got := ComparePackages(a, b); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if ComparePackages(a, a).Differs() {
		t.Error("an inventory differs from itself")
	}
}
