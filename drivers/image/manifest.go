package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runprov/runprov/core"
)

// Layer media types runprov knows how to unpack.
const (
	mtOCILayer          = "application/vnd.oci.image.layer.v1.tar"
	mtOCILayerGzip      = "application/vnd.oci.image.layer.v1.tar+gzip"
	mtOCILayerZstd      = "application/vnd.oci.image.layer.v1.tar+zstd"
	mtOCIConfig         = "application/vnd.oci.image.config.v1+json"
	mtDockerLayer       = "application/vnd.docker.image.rootfs.diff.tar"
	mtDockerLayerGzip   = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mtDockerForeignGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	mtOCIForeign        = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	mtOCIForeignGzip    = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
)

type compression int

const (
	compressNone compression = iota
	compressGzip
	compressZstd
	compressSniff // unknown media type: look at the first bytes
)

// layerCompression says how a layer of media type mt is compressed.
func layerCompression(mt string) compression {
	switch mt {
	case mtOCILayer, mtDockerLayer, mtOCIForeign:
		return compressNone
	case mtOCILayerGzip, mtDockerLayerGzip, mtDockerForeignGzip, mtOCIForeignGzip:
		return compressGzip
	case mtOCILayerZstd, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return compressZstd
	}
	return compressSniff
}

func sniffCompression(head []byte) compression {
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return compressGzip
	case len(head) >= 4 && bytes.Equal(head[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return compressZstd
	}
	return compressNone
}

func mediaTypeOf(s string) types.MediaType { return types.MediaType(s) }

// detectMediaType is the media type of a manifest blob: the one the referrer
// declared, else the blob's own mediaType field, else guessed from its keys.
func detectMediaType(declared string, data []byte) string {
	var probe struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
		Config    json.RawMessage   `json:"config"`
		Layers    []json.RawMessage `json:"layers"`
	}
	if err := json.Unmarshal(data, &probe); err == nil {
		switch {
		case probe.MediaType != "":
			return probe.MediaType
		case declared != "":
			return declared
		case probe.Manifests != nil:
			return core.MediaTypeOCIIndex
		case probe.Config != nil:
			return core.MediaTypeOCIManifest
		}
	}
	return declared
}

func isManifestMediaType(mt string) bool {
	return mt == core.MediaTypeOCIManifest || mt == core.MediaTypeDockerManifest
}

// checkImageMediaType refuses what is neither an index nor an image manifest
// (Docker schema 1, artifacts).
func checkImageMediaType(d, mt string) error {
	switch {
	case core.IsIndexMediaType(mt), isManifestMediaType(mt):
		return nil
	case strings.HasPrefix(mt, "application/vnd.docker.distribution.manifest.v1"):
		return fmt.Errorf("%s: %w: Docker schema 1 manifests are obsolete; push the image again with a current tool", d, core.ErrUnsupported)
	}
	return fmt.Errorf("%s: %w: media type %q is not an image index or manifest", d, core.ErrUnsupported, mt)
}

func parseManifest(data []byte, d string) (*v1.Manifest, error) {
	m, err := v1.ParseManifest(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w: %v", d, core.ErrInvalid, err)
	}
	if err := checkDigest(m.Config.Digest.String()); err != nil {
		return nil, fmt.Errorf("manifest %s config: %w", d, err)
	}
	for i, l := range m.Layers {
		if err := checkDigest(l.Digest.String()); err != nil {
			return nil, fmt.Errorf("manifest %s layer %d: %w", d, i+1, err)
		}
		if l.Size < 0 {
			return nil, fmt.Errorf("manifest %s layer %d: %w: negative size", d, i+1, core.ErrInvalid)
		}
	}
	return m, nil
}

func parseIndex(data []byte, d string) (*v1.IndexManifest, error) {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("index %s: %w: %v", d, core.ErrInvalid, err)
	}
	for _, m := range idx.Manifests {
		if err := checkDigest(m.Digest.String()); err != nil {
			return nil, fmt.Errorf("index %s: %w", d, err)
		}
	}
	return idx, nil
}

func parseConfig(data []byte, d string) (*v1.ConfigFile, error) {
	cf, err := v1.ParseConfigFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("image config %s: %w: %v", d, core.ErrInvalid, err)
	}
	return cf, nil
}

func imageConfig(cf *v1.ConfigFile) core.ImageConfig {
	c := cf.Config
	return core.ImageConfig{Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir, User: c.User, Labels: c.Labels}
}

// --- platforms ---

// parsePlatform reads "os/arch[/variant]".
func parsePlatform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("platform %q: %w: want os/arch[/variant], e.g. linux/amd64", s, core.ErrInvalid)
	}
	return *p, nil
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func configPlatform(cf *v1.ConfigFile) v1.Platform {
	return v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
}

func normVariant(arch, variant string) string {
	if arch == "arm64" && variant == "" {
		return "v8"
	}
	return variant
}

// platformMatches reports whether have runs on want: same OS and
// architecture, and the same variant when want names one.
func platformMatches(want, have v1.Platform) bool {
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	return normVariant(want.Architecture, want.Variant) == normVariant(have.Architecture, have.Variant)
}

// isAttestation recognises the non-image entries build tools add to
// indexes (BuildKit's attestation manifests, platform unknown/unknown).
func isAttestation(d v1.Descriptor) bool {
	if d.Annotations["vnd.docker.reference.type"] != "" {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown"
}

// pickManifest chooses the manifest of idx for want among those ok accepts
// (nil: all). The error lists the platforms the index has.
func pickManifest(idx *v1.IndexManifest, indexDigest string, want v1.Platform, ok func(v1.Descriptor) bool) (v1.Descriptor, error) {
	var (
		found []v1.Descriptor
		have  []string
	)
	for _, m := range idx.Manifests {
		if isAttestation(m) || core.IsIndexMediaType(string(m.MediaType)) || m.Platform == nil {
			continue
		}
		have = append(have, platformString(*m.Platform))
		if platformMatches(want, *m.Platform) && (ok == nil || ok(m)) {
			found = append(found, m)
		}
	}
	if len(found) == 0 {
		return v1.Descriptor{}, fmt.Errorf("index %s: %w: no manifest for platform %s (it has: %s); choose one with --platform (image import, pull) or FROM --platform= (a Runfile)",
			indexDigest, core.ErrInvalid, platformString(want), strings.Join(have, ", "))
	}
	// Prefer the exact variant when the host has one (arm64/v8 over arm64).
	for _, m := range found {
		if normVariant(m.Platform.Architecture, m.Platform.Variant) == normVariant(want.Architecture, want.Variant) {
			return m, nil
		}
	}
	return found[0], nil
}
