package sbom_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/sbom"
	"github.com/runprov/runprov/plugins/sbom/sbomtest"
)

var schemaDir = filepath.Join("..", "..", "testdata", "schemas", "sbom")

func testDocument() sbom.Document {
	return sbom.Document{
		Image: &core.ResolvedImage{
			Ref: "example.org/analysis:1", ManifestDigest: "sha256:" + strings.Repeat("a", 64),
			ConfigDigest: "sha256:" + strings.Repeat("c", 64), Platform: "linux/amd64",
		},
		Inventory: &core.Inventory{
			ConfigDigest: "sha256:" + strings.Repeat("c", 64), Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Packages: []core.Package{
				{Ecosystem: "deb", Name: "python3-numpy", Version: "1:1.24.2-1", Arch: "amd64", PURL: "pkg:deb/debian/python3-numpy@1:1.24.2-1?arch=amd64", Location: "/var/lib/dpkg/status"},
				{Ecosystem: "pypi", Name: "numpy", Version: "1.24.2", License: "BSD License (a free-text licence field)", PURL: "pkg:pypi/numpy@1.24.2", Location: "/usr/lib/python3/dist-packages/numpy-1.24.2.dist-info"},
				{Ecosystem: "pypi", Name: "numpy", Version: "1.24.2", PURL: "pkg:pypi/numpy@1.24.2", Location: "/opt/venv/lib/python3.11/site-packages/numpy-1.24.2.dist-info"},
			},
		},
		Tool: "test",
	}
}

func TestWriteValidatesAgainstOfficialSchemas(t *testing.T) {
	for _, format := range []string{sbom.FormatCycloneDX, sbom.FormatSPDX} {
		t.Run(format, func(t *testing.T) {
			schema, err := sbomtest.SchemaFor(schemaDir, format)
			if err != nil {
				t.Fatal(err)
			}
			var a, b bytes.Buffer
			if err := sbom.Write(&a, format, testDocument()); err != nil {
				t.Fatal(err)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(a.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(inst); err != nil {
				t.Fatalf("%s document does not validate: %v\n%s", format, err, a.String())
			}
			// Every package is there with its purl, and the bytes are stable.
			if n := strings.Count(a.String(), "pkg:pypi/numpy@1.24.2"); n < 2 {
				t.Errorf("numpy purl appears %d times, want one per location", n)
			}
			sbom.Write(&b, format, testDocument())
			if a.String() != b.String() {
				t.Error("two writes of the same image differ")
			}
		})
	}
}

// TestSchemaRejects shows the schemas are not vacuous: a document missing
// what the format requires fails.
func TestSchemaRejects(t *testing.T) {
	for format, doc := range map[string]string{
		sbom.FormatCycloneDX: `{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"type": "no-such-type", "name": "x"}]}`,
		sbom.FormatSPDX:      `{"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "x", "dataLicense": "CC0-1.0"}`,
	} {
		schema, err := sbomtest.SchemaFor(schemaDir, format)
		if err != nil {
			t.Fatal(err)
		}
		inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if schema.Validate(inst) == nil {
			t.Errorf("%s schema accepted %s", format, doc)
		}
	}
}

func TestCycloneDXNamesImageAndLocations(t *testing.T) {
	var buf bytes.Buffer
	if err := sbom.Write(&buf, sbom.FormatCycloneDX, testDocument()); err != nil {
		t.Fatal(err)
	}
	var bom struct {
		SpecVersion string `json:"specVersion"`
		Metadata    struct {
			Component struct {
				Type, Name string
			} `json:"component"`
		} `json:"metadata"`
		Components []struct {
			Name, Version, Purl string
			Properties          []struct{ Name, Value string }
		} `json:"components"`
	}
	if err := json.Unmarshal(buf.Bytes(), &bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != "1.6" || bom.Metadata.Component.Type != "container" || bom.Metadata.Component.Name != "example.org/analysis:1" {
		t.Errorf("bom header: %+v", bom)
	}
	if len(bom.Components) != 3 || bom.Components[0].Version != "1:1.24.2-1" {
		t.Fatalf("components: %+v", bom.Components)
	}
	if p := bom.Components[2].Properties; len(p) != 2 || p[1].Value != "/opt/venv/lib/python3.11/site-packages/numpy-1.24.2.dist-info" {
		t.Errorf("location property: %+v", p)
	}
	if err := sbom.Write(&buf, "xml", testDocument()); err == nil {
		t.Error("an unknown format was accepted")
	}
}
