// Package sbomtest validates SBOM documents against the official schemas in tests.
package sbomtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/runprov/runprov/plugins/sbom"
)

// SchemaFor compiles the official JSON schema of format from dir (the
// repository's testdata/schemas/sbom), each schema file registered under
// its own $id so that references resolve offline. Tests use it.
func SchemaFor(dir, format string) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	files, err := filepath.Glob(filepath.Join(dir, "*.schema.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no schemas in %s", dir)
	}
	ids := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if id == "" {
			return nil, fmt.Errorf("%s: no $id", f)
		}
		if err := c.AddResource(id, doc); err != nil {
			return nil, err
		}
		ids[filepath.Base(f)] = id
	}
	name := map[string]string{sbom.FormatCycloneDX: "bom-1.6.schema.json", sbom.FormatSPDX: "spdx-2.3.schema.json"}[format]
	if ids[name] == "" {
		return nil, fmt.Errorf("schema %s of %s is not in %s", name, format, dir)
	}
	return c.Compile(ids[name])
}
