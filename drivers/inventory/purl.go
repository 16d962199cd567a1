package inventory

import (
	"strings"

	packageurl "github.com/package-url/packageurl-go"

	"github.com/runprov/runprov/core"
)

// purl builds a package URL; empty qualifier values are left out.
func purl(typ, namespace, name, version string, quals ...string) string {
	var q packageurl.Qualifiers
	for i := 0; i+1 < len(quals); i += 2 {
		if quals[i+1] != "" {
			q = append(q, packageurl.Qualifier{Key: quals[i], Value: quals[i+1]})
		}
	}
	return packageurl.NewPackageURL(typ, namespace, name, version, q, "").ToString()
}

var pypiSeparators = core.LazyRegexp(`[-_.]+`)

// pypiName normalises a distribution name as PEP 503 and the pypi package
// URL type ask: lower case, runs of -, _ and . as one dash.
func pypiName(name string) string {
	return pypiSeparators().ReplaceAllString(strings.ToLower(name), "-")
}
