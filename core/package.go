package core

import "time"

// Package ecosystems, the ecosystem field of a Package.
const (
	EcosystemDeb   = "deb"
	EcosystemApk   = "apk"
	EcosystemRPM   = "rpm"
	EcosystemPyPI  = "pypi"
	EcosystemCRAN  = "cran"
	EcosystemConda = "conda"
)

// Package is one software package found in an image's root filesystem.
type Package struct {
	Ecosystem string `json:"ecosystem"` // Ecosystem*
	Name      string `json:"name"`
	Version   string `json:"version"`
	// PURL is the package URL (pkg:deb/debian/bash@5.2-1?arch=amd64).
	PURL string `json:"purl"`
	// Location is where it was found, absolute inside the image
	// (/var/lib/dpkg/status, /usr/lib/python3/dist-packages/numpy-1.24.2.dist-info).
	Location string `json:"location"`
	Arch     string `json:"arch,omitempty"`
	License  string `json:"license,omitempty"`
}

// Key identifies a package across images for diffs: the same name in the
// same ecosystem (and architecture) is the same package.
func (p Package) Key() string { return p.Ecosystem + "/" + p.Name + "/" + p.Arch }

// Inventory is what an image's root filesystem holds, kept once per image
// config digest.
type Inventory struct {
	ConfigDigest string    `json:"config_digest"`
	Created      time.Time `json:"created"`
	Packages     []Package `json:"packages"`
}

// Counts returns how many packages each ecosystem has.
func (inv *Inventory) Counts() map[string]int {
	m := map[string]int{}
	for _, p := range inv.Packages {
		m[p.Ecosystem]++
	}
	return m
}

// LayerScan is what the entries of an image's layers say about modes and
// size once whiteouts are applied: what unpacking does not keep (runprov
// drops setuid and setgid bits) but a TRE reviewer wants to know.
type LayerScan struct {
	// Setuid are the regular files with the setuid or setgid bit, absolute.
	Setuid []string `json:"setuid"`
	// WorldWritable are the directories anyone may write to, absolute.
	WorldWritable []string `json:"world_writable"`
	// Size is the bytes of the regular files of the unpacked image.
	Size int64 `json:"size"`
}

// RootfsFacts are what TRE checks look up in an unpacked root filesystem.
type RootfsFacts struct {
	// Dirs says, for each directory asked about, whether it exists.
	Dirs map[string]bool `json:"dirs"`
	// Caches are model hub cache directories found (~/.cache/huggingface).
	Caches []string `json:"caches"`
}
