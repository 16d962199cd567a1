package inventory

import (
	"context"
	"encoding/json"
	"io/fs"
	"path"
	"strings"

	"github.com/runprov/runprov/core"
)

// skipTop are top-level directories that never hold installed packages
// (and in an image are normally empty mount points).
var skipTop = map[string]bool{"proc": true, "sys": true, "dev": true}

// walk finds the packages that live anywhere in the tree: Python
// distributions, R packages and conda environments. It never follows a
// symlink to a directory.
func walk(ctx context.Context, fsys fs.FS) ([]core.Package, error) {
	var out []core.Package
	err := fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			return nil // an unreadable directory hides nothing we could read
		}
		name := e.Name()
		if e.IsDir() {
			if err := ctx.Err(); err != nil {
				return err
			}
			switch {
			case p != "." && path.Dir(p) == "." && skipTop[name]:
				return fs.SkipDir
			case strings.HasSuffix(name, ".dist-info"):
				out = appendPkg(out, readPython(fsys, path.Join(p, "METADATA"), p))
				return fs.SkipDir
			case strings.HasSuffix(name, ".egg-info"):
				out = appendPkg(out, readPython(fsys, path.Join(p, "PKG-INFO"), p))
				return fs.SkipDir
			case name == "conda-meta":
				out = append(out, readConda(fsys, p)...)
				return fs.SkipDir
			}
			return nil
		}
		switch {
		case !e.Type().IsRegular():
		case strings.HasSuffix(name, ".egg-info"):
			out = appendPkg(out, readPython(fsys, p, p))
		case name == "DESCRIPTION":
			out = appendPkg(out, readR(fsys, p))
		}
		return nil
	})
	return out, err
}

func appendPkg(out []core.Package, p *core.Package) []core.Package {
	if p == nil {
		return out
	}
	return append(out, *p)
}

// readPython reads the core metadata (METADATA, PKG-INFO: RFC 822 headers)
// of the distribution at dir; nil when it has no name or version.
func readPython(fsys fs.FS, file, dir string) *core.Package {
	data, err := readSmall(fsys, file)
	if err != nil {
		return nil
	}
	head, _, _ := strings.Cut(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n\n")
	st := stanzas(head, ':', keys("Name", "Version", "License", "License-Expression"))
	if len(st) == 0 || st[0]["Name"] == "" || st[0]["Version"] == "" {
		return nil
	}
	f := st[0]
	lic := f["License-Expression"]
	if lic == "" && len(f["License"]) <= 80 { // some put the whole licence text there
		lic = f["License"]
	}
	return &core.Package{
		Ecosystem: core.EcosystemPyPI, Name: f["Name"], Version: f["Version"], License: lic,
		Location: abs(dir), PURL: purl("pypi", "", pypiName(f["Name"]), f["Version"]),
	}
}

// readR reads an installed R package's DESCRIPTION: a package directory
// named like its Package field, with the Built field R CMD INSTALL adds
// (source trees have none).
func readR(fsys fs.FS, file string) *core.Package {
	data, err := readSmall(fsys, file)
	if err != nil {
		return nil
	}
	st := stanzas(string(data), ':', keys("Package", "Version", "Built", "License", "Repository"))
	if len(st) == 0 {
		return nil
	}
	f := st[0]
	dir := path.Dir(file)
	if f["Package"] == "" || f["Version"] == "" || f["Built"] == "" || path.Base(dir) != f["Package"] {
		return nil
	}
	typ := "cran"
	if strings.HasPrefix(strings.ToLower(f["Repository"]), "bioconductor") {
		typ = "bioconductor"
	}
	return &core.Package{
		Ecosystem: core.EcosystemCRAN, Name: f["Package"], Version: f["Version"], License: f["License"],
		Location: abs(dir), PURL: purl(typ, "", f["Package"], f["Version"]),
	}
}

// condaRecord is the part of a conda-meta/*.json record runprov reads.
type condaRecord struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Build   string `json:"build"`
	Channel string `json:"channel"`
	Subdir  string `json:"subdir"`
	License string `json:"license"`
}

// readConda lists the packages of a conda environment's conda-meta
// directory, one JSON record per package.
func readConda(fsys fs.FS, dir string) []core.Package {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil
	}
	var out []core.Package
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := path.Join(dir, e.Name())
		data, err := readSmall(fsys, p)
		if err != nil {
			continue
		}
		var r condaRecord
		if json.Unmarshal(data, &r) != nil || r.Name == "" || r.Version == "" {
			continue
		}
		channel := strings.TrimSuffix(strings.TrimSuffix(r.Channel, "/"), "/"+r.Subdir)
		if i := strings.LastIndexByte(channel, '/'); i >= 0 {
			channel = channel[i+1:]
		}
		out = append(out, core.Package{
			Ecosystem: core.EcosystemConda, Name: r.Name, Version: r.Version, License: r.License, Arch: r.Subdir,
			Location: abs(p),
			PURL:     purl("conda", "", r.Name, r.Version, "build", r.Build, "channel", channel, "subdir", r.Subdir),
		})
	}
	return out
}
