package history

import (
	"slices"
	"strings"

	"github.com/runprov/runprov/core"
)

// PackageChange is one package added, removed or changed between the
// images of two runs.
type PackageChange struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	Arch      string `json:"arch,omitempty"`
	A         string `json:"a,omitempty"` // version in run A; "" when added
	B         string `json:"b,omitempty"` // version in run B; "" when removed
}

// PackagesDiff compares the package inventories of two runs' images.
type PackagesDiff struct {
	Added   []PackageChange `json:"added"`
	Removed []PackageChange `json:"removed"`
	Changed []PackageChange `json:"changed"`
	Same    int             `json:"same"`
}

// Differs reports whether any package was added, removed or changed.
func (p PackagesDiff) Differs() bool { return len(p.Added)+len(p.Removed)+len(p.Changed) > 0 }

// ComparePackages compares two inventories by ecosystem, name and
// architecture; a package found in several places (two Python
// environments) compares by its set of versions. Results are sorted.
func ComparePackages(a, b []core.Package) PackagesDiff {
	va, vb := versions(a), versions(b)
	d := PackagesDiff{Added: []PackageChange{}, Removed: []PackageChange{}, Changed: []PackageChange{}}
	for _, k := range slices.Sorted(mapKeys(va, vb)) {
		x, y := va[k], vb[k]
		eco, rest, _ := strings.Cut(k, "/")
		name, arch, _ := strings.Cut(rest, "/")
		c := PackageChange{Ecosystem: eco, Name: name, Arch: arch, A: x, B: y}
		switch {
		case x == y:
			d.Same++
		case x == "":
			d.Added = append(d.Added, c)
		case y == "":
			d.Removed = append(d.Removed, c)
		default:
			d.Changed = append(d.Changed, c)
		}
	}
	return d
}

// versions maps each package key to its versions, sorted and joined.
func versions(ps []core.Package) map[string]string {
	all := map[string][]string{}
	for _, p := range ps {
		k := p.Key()
		if !slices.Contains(all[k], p.Version) {
			all[k] = append(all[k], p.Version)
		}
	}
	out := make(map[string]string, len(all))
	for k, vs := range all {
		slices.Sort(vs)
		out[k] = strings.Join(vs, ", ")
	}
	return out
}

func mapKeys(ms ...map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range ms {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					if !yield(k) {
						return
					}
				}
			}
		}
	}
}
