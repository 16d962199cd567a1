package history

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/runprov/runprov/core"
)

// RO-Crate identifiers.
const (
	ROCrateContext      = "https://w3id.org/ro/crate/1.1/context"
	ROCrateSpec         = "https://w3id.org/ro/crate/1.1"
	WorkflowRunContext  = "https://w3id.org/ro/terms/workflow-run/context"
	ProcessRunCrate     = "https://w3id.org/ro/wfrun/process/0.5"
	ROCrateMetadataFile = "ro-crate-metadata.json"
)

// ROCrate returns the files of an RO-Crate 1.1 directory that describes the
// run following the Process Run Crate profile: ro-crate-metadata.json, the
// Runfile (copied: it is small and is the crate's instrument), run.json (the
// full record as `show --json` prints it). Inputs and outputs are not
// copied: they are referenced by their host file:// URL with their sha256
// and size, so large data stays where it is and can still be checked.
func ROCrate(rec *Record, runfile []byte, opts ExportOptions) (map[string][]byte, error) {
	r := &rec.Run
	runJSON, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	c := &crate{rec: rec, files: map[string][]byte{"run.json": append(runJSON, '\n')}}
	c.add(map[string]any{
		"@id": ROCrateMetadataFile, "@type": "CreativeWork",
		"conformsTo": crateRef(ROCrateSpec), "about": crateRef("./"),
	})
	c.add(map[string]any{
		"@id": ProcessRunCrate, "@type": "CreativeWork", "name": "Process Run Crate", "version": "0.5",
	})
	app := c.instrument(runfile)
	image := c.image()
	// The person who ran it.
	agent := "#user-" + provLocal(userName(rec)) + "@" + provLocal(r.Hostname)
	c.add(map[string]any{"@id": agent, "@type": "Person", "name": userName(rec)})
	objects, results := c.data()
	action := c.action(app, image, agent, objects, results)

	created := r.Ended
	if created.IsZero() {
		created = r.Created
	}
	root := map[string]any{
		"@id": "./", "@type": "Dataset",
		"name":          "runprov run " + r.ID,
		"description":   fmt.Sprintf("Provenance of runprov run %s of %s at commit %s, exported by runprov %s", r.ID, r.Path, r.Commit, orUnknown(opts.Version)),
		"datePublished": rfc3339(created),
		"license":       crateRef("#license"),
		"conformsTo":    []map[string]any{crateRef(ProcessRunCrate)},
		"hasPart":       nonNilRefs(c.parts),
		"mentions":      []map[string]any{crateRef(action)},
	}
	c.add(map[string]any{"@id": "#license", "@type": "CreativeWork", "name": "Not stated",
		"description": "runprov does not know the license of the run's data; ask its owner"})
	meta, err := json.MarshalIndent(map[string]any{
		"@context": []any{ROCrateContext, WorkflowRunContext},
		"@graph":   append([]map[string]any{root}, c.graph...),
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	c.files[ROCrateMetadataFile] = append(meta, '\n')
	return c.files, nil
}

func crateRef(id string) map[string]any { return map[string]any{"@id": id} }

// crate collects the entities of a run's RO-Crate and the files it holds.
type crate struct {
	rec   *Record
	graph []map[string]any
	parts []map[string]any // the root dataset's hasPart
	files map[string][]byte
}

func (c *crate) add(e map[string]any) { c.graph = append(c.graph, e) }

// instrument adds the Runfile at its commit, run by runprov, and the run
// record; it returns the instrument's id.
func (c *crate) instrument(runfile []byte) string {
	r := &c.rec.Run
	app := "#runfile-" + r.Commit
	appEntity := map[string]any{
		"@id": app, "@type": "SoftwareApplication",
		"name":            fmt.Sprintf("Runfile %s at commit %s of repo %s", r.Path, shortHex(r.Commit), r.Repo),
		"softwareVersion": r.Commit,
		"identifier":      "git-blob:" + r.RunfileBlob,
	}
	if runfile != nil {
		c.files["Runfile"] = runfile
		sum := sha256.Sum256(runfile)
		c.add(map[string]any{
			"@id": "Runfile", "@type": "File", "name": "Runfile " + r.Path,
			"encodingFormat": "text/plain", "contentSize": fmt.Sprint(len(runfile)), "sha256": hex.EncodeToString(sum[:]),
			"description": fmt.Sprintf("The Runfile as committed at %s (git blob %s)", r.Commit, r.RunfileBlob),
		})
		c.parts = append(c.parts, crateRef("Runfile"))
		appEntity["hasPart"] = crateRef("Runfile")
	}
	c.add(appEntity)
	c.add(map[string]any{
		"@id": "run.json", "@type": "File", "name": "runprov run record",
		"encodingFormat": "application/json", "contentSize": fmt.Sprint(len(c.files["run.json"])),
		"description": "Everything runprov recorded of the run, as runprov show --json prints it",
	})
	c.parts = append(c.parts, crateRef("run.json"))
	return app
}

// image adds the image the run's container came from, with the software
// found in it; it returns the image's id ("" without a digest).
func (c *crate) image() string {
	r := &c.rec.Run
	d, ok := sha256Hex(r.ImageDigest)
	if !ok {
		return ""
	}
	image := "#image-" + d
	name, tag := imageNameTag(r.ImageRef)
	img := map[string]any{
		"@id": image, "@type": "ContainerImage",
		"additionalType": crateRef("https://w3id.org/ro/terms/workflow-run#DockerImage"),
		"name":           name, "sha256": d,
	}
	if reg, _, ok := strings.Cut(name, "/"); ok && strings.ContainsAny(reg, ".:") {
		img["registry"] = reg
	}
	if tag != "" {
		img["tag"] = tag
	}
	if pk := c.rec.Packages; pk != nil && len(pk.Packages) > 0 {
		var sw []map[string]any
		for i, p := range pk.Packages {
			id := fmt.Sprintf("#software-%d-%s", i+1, provLocal(p.Name))
			e := map[string]any{
				"@id": id, "@type": "SoftwareApplication", "name": p.Name, "softwareVersion": p.Version,
				"identifier": p.PURL, "description": p.Ecosystem + " package found at " + p.Location + " in the image",
			}
			if p.License != "" {
				e["license"] = p.License
			}
			c.add(e)
			sw = append(sw, crateRef(id))
		}
		img["softwareRequirements"] = sw
	}
	c.add(img)
	return image
}

// data adds the inputs and outputs, referenced where they are on the host.
func (c *crate) data() (objects, results []map[string]any) {
	r := &c.rec.Run
	seen := map[string]bool{}
	for _, f := range r.Inputs {
		e := c.fileEntity(core.MountInput, f)
		if id := e["@id"].(string); !seen[id] {
			seen[id] = true
			c.add(e)
			objects = append(objects, crateRef(id))
			c.parts = append(c.parts, crateRef(id))
		}
	}
	for _, f := range r.Outputs {
		e := c.fileEntity(core.MountOutput, f)
		if id := e["@id"].(string); !seen[id] {
			seen[id] = true
			c.add(e)
			results = append(results, crateRef(id))
			c.parts = append(c.parts, crateRef(id))
		}
	}
	return objects, results
}

func (c *crate) fileEntity(kind string, f core.FileRecord) map[string]any {
	r := &c.rec.Run
	src := mountSource(r, kind, f.Name)
	id := "#" + kind + "-" + provLocal(FileLabel(f.Name, f.Path))
	if src != "" {
		p := src
		// A single-file input is mounted as the file itself.
		if kind == core.MountOutput || path.Base(filepath.ToSlash(src)) != f.Path {
			p = filepath.Join(src, filepath.FromSlash(f.Path))
		}
		id = fileURI(p)
	}
	e := map[string]any{"@id": id, "@type": "File", "name": FileLabel(f.Name, f.Path), "contentSize": fmt.Sprint(f.Size)}
	if f.SHA256 != "" {
		e["sha256"] = f.SHA256
	}
	if f.Link != "" {
		e["description"] = "symbolic link to " + f.Link
	}
	return e
}

// action adds the run itself, a CreateAction; it returns its id.
func (c *crate) action(app, image, agent string, objects, results []map[string]any) string {
	r := &c.rec.Run
	action := "#run-" + r.ID
	act := map[string]any{
		"@id": action, "@type": "CreateAction",
		"name":        "runprov run " + core.ShortRunID(r.ID),
		"description": fmt.Sprintf("%s of %s at %s: %s", strings.Join(r.Argv, " "), r.Path, shortHex(r.Commit), r.Status),
		"instrument":  crateRef(app),
		"object":      nonNilRefs(objects),
		"result":      nonNilRefs(results),
		"agent":       crateRef(agent),
		"identifier":  r.ID,
	}
	if image != "" {
		act["containerImage"] = crateRef(image)
	}
	if r.Note != "" {
		act["disambiguatingDescription"] = r.Note
	}
	if len(r.Tags) > 0 {
		act["keywords"] = strings.Join(r.Tags, ", ")
	}
	if !r.Started.IsZero() {
		act["startTime"] = rfc3339(r.Started)
	}
	if !r.Ended.IsZero() {
		act["endTime"] = rfc3339(r.Ended)
	}
	switch r.Status {
	case core.RunSucceeded:
		act["actionStatus"] = crateRef("http://schema.org/CompletedActionStatus")
	case core.RunFailed, core.RunAborted:
		act["actionStatus"] = crateRef("http://schema.org/FailedActionStatus")
		act["error"] = orUnknown(r.Reason)
	default:
		act["actionStatus"] = crateRef("http://schema.org/ActiveActionStatus")
	}
	c.add(act)
	return action
}

// WriteCrate writes the files of ROCrate into dir, which must not exist or
// be empty unless force (then the crate's files are written over it).
func WriteCrate(dir string, files map[string][]byte, force bool) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 && !force {
		return fmt.Errorf("write crate: %w: %s is not empty; name a new directory, or pass --force to write the crate's files over it", core.ErrExists, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write crate: %w", err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("write crate: %w", err)
		}
	}
	return nil
}

func mountSource(r *core.Run, kind, name string) string {
	for _, m := range r.Mounts {
		if m.Kind != kind {
			continue
		}
		if (kind == core.MountInput && m.Name == name) || (kind == core.MountOutput && m.Target == name) {
			return m.Source
		}
	}
	return ""
}

// imageNameTag splits NAME[:TAG][@DIGEST].
func imageNameTag(ref string) (string, string) {
	name, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[:i], name[i+1:]
	}
	return name, ""
}

func nonNilRefs(s []map[string]any) []map[string]any {
	if s == nil {
		return []map[string]any{}
	}
	return s
}
