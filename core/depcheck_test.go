package core_test

import (
	"go/build"
	"strings"
	"testing"
)

// TestCoreImportsNoPluginsOrDrivers keeps the dependencies pointing inwards:
// core may use the standard library only.
func TestCoreImportsNoPluginsOrDrivers(t *testing.T) {
	pkg, err := build.Default.Import("github.com/runprov/runprov/core", ".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.Contains(imp, ".") { // a module path, not the standard library
			t.Errorf("core imports %s; core may import the standard library only", imp)
		}
		if strings.Contains(imp, "/plugins") || strings.Contains(imp, "/drivers") {
			t.Errorf("core imports %s: plugins and drivers depend on core, never the reverse", imp)
		}
	}
}
