package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/runprov/runprov/core"
)

// Formats are the SBOM formats Write knows.
const (
	FormatCycloneDX = "cyclonedx"
	FormatSPDX      = "spdx"
)

// Document is an image and its packages, as an SBOM describes them.
type Document struct {
	Image     *core.ResolvedImage
	Inventory *core.Inventory
	// Tool is the runprov version that wrote it.
	Tool string
}

// Write writes d in format (FormatCycloneDX: CycloneDX 1.6 JSON,
// FormatSPDX: SPDX 2.3 JSON). The document depends only on the image and
// its inventory: writing it twice gives the same bytes.
func Write(w io.Writer, format string, d Document) error {
	switch format {
	case FormatCycloneDX:
		enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
		enc.SetPretty(true)
		return enc.EncodeVersion(CycloneDX(d), cdx.SpecVersion1_6)
	case FormatSPDX:
		return spdxjson.Write(SPDX(d), w, spdxjson.Indent("  "))
	}
	return fmt.Errorf("sbom format %q: %w: use cyclonedx or spdx", format, core.ErrInvalid)
}

// imageName is how SBOMs name the image: its reference, else its digest.
func imageName(img *core.ResolvedImage) string {
	if img.Ref != "" {
		return img.Ref
	}
	return img.ManifestDigest
}

// serial is a stable UUID (RFC 4122 layout, version 5 style) from the image
// config digest, so the same image always gets the same serial number.
func serial(config string) string {
	sum := sha256.Sum256([]byte("runprov-sbom:" + config))
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	h := hex.EncodeToString(sum[:16])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func created(inv *core.Inventory) string {
	t := inv.Created
	if t.IsZero() {
		t = time.Unix(0, 0)
	}
	return t.UTC().Format(time.RFC3339)
}

// CycloneDX is d as a CycloneDX BOM: the image is the metadata component (a
// container), each package a library with its package URL, and the
// property runprov:location saying where in the image it was found.
func CycloneDX(d Document) *cdx.BOM {
	img := d.Image
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + serial(img.ConfigDigest)
	root := cdx.Component{
		BOMRef: img.ManifestDigest, Type: cdx.ComponentTypeContainer, Name: imageName(img), Version: img.ManifestDigest,
		Properties: &[]cdx.Property{{Name: "runprov:config_digest", Value: img.ConfigDigest}, {Name: "runprov:platform", Value: img.Platform}},
	}
	if hx, ok := strings.CutPrefix(img.ManifestDigest, "sha256:"); ok {
		root.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hx}}
	}
	bom.Metadata = &cdx.Metadata{
		Timestamp: created(d.Inventory),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "runprov", Version: d.Tool}}},
		Component: &root,
	}
	comps := make([]cdx.Component, 0, len(d.Inventory.Packages))
	refs := make([]string, 0, len(d.Inventory.Packages))
	for i, p := range d.Inventory.Packages {
		c := cdx.Component{
			BOMRef: p.PURL + "#" + strconv.Itoa(i), Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, PackageURL: p.PURL,
			Properties: &[]cdx.Property{{Name: "runprov:ecosystem", Value: p.Ecosystem}, {Name: "runprov:location", Value: p.Location}},
		}
		if p.License != "" {
			c.Licenses = &cdx.Licenses{{License: &cdx.License{Name: p.License}}}
		}
		comps = append(comps, c)
		refs = append(refs, c.BOMRef)
	}
	bom.Components = &comps
	bom.Dependencies = &[]cdx.Dependency{{Ref: root.BOMRef, Dependencies: &refs}}
	return bom
}

// SPDX is d as an SPDX 2.3 document: the image is the package the document
// describes, and it CONTAINS each package, which carries its package URL as
// a PACKAGE-MANAGER external reference.
func SPDX(d Document) *spdx.Document {
	img := d.Image
	hx := strings.TrimPrefix(img.ConfigDigest, "sha256:")
	const imageID = common.ElementID("Image")
	doc := &spdx.Document{
		SPDXVersion: spdx.Version, DataLicense: spdx.DataLicense, SPDXIdentifier: "DOCUMENT",
		DocumentName:      imageName(img),
		DocumentNamespace: "https://runprov.dev/spdx/" + hx + "-" + serial(img.ConfigDigest),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: "runprov-" + d.Tool}},
			Created:  created(d.Inventory),
		},
	}
	imgPkg := noAssertion(&spdx.Package{
		PackageName: imageName(img), PackageSPDXIdentifier: imageID, PackageVersion: img.ManifestDigest,
		PrimaryPackagePurpose: "CONTAINER",
		PackageComment:        "config " + img.ConfigDigest + ", platform " + img.Platform,
	})
	if mh, ok := strings.CutPrefix(img.ManifestDigest, "sha256:"); ok {
		imgPkg.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: mh}}
	}
	doc.Packages = append(doc.Packages, imgPkg)
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{
		RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", string(imageID)), Relationship: common.TypeRelationshipDescribe,
	})
	for i, p := range d.Inventory.Packages {
		id := common.ElementID("Package-" + strconv.Itoa(i+1))
		sp := noAssertion(&spdx.Package{
			PackageName: p.Name, PackageSPDXIdentifier: id, PackageVersion: p.Version,
			PackageSourceInfo: "found in the image at " + p.Location,
			PackageExternalReferences: []*spdx.PackageExternalReference{
				{Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: p.PURL},
			},
		})
		if p.License != "" {
			sp.PackageLicenseComments = "declared by the package: " + p.License
		}
		doc.Packages = append(doc.Packages, sp)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", string(imageID)), RefB: common.MakeDocElementID("", string(id)), Relationship: common.TypeRelationshipContains,
		})
	}
	return doc
}

// noAssertion fills the fields SPDX requires that runprov cannot know
// offline: download location, licences (package licence fields are free
// text, not SPDX expressions) and copyright.
func noAssertion(p *spdx.Package) *spdx.Package {
	p.PackageDownloadLocation = "NOASSERTION"
	p.PackageLicenseConcluded = "NOASSERTION"
	p.PackageLicenseDeclared = "NOASSERTION"
	p.PackageCopyrightText = "NOASSERTION"
	p.FilesAnalyzed = false
	p.IsFilesAnalyzedTagPresent = true
	return p
}
