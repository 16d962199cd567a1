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
	files := map[string][]byte{"run.json": append(runJSON, '\n')}

	ref := func(id string) map[string]any { return map[string]any{"@id": id} }
	var graph []map[string]any
	add := func(e map[string]any) { graph = append(graph, e) }
	var parts []map[string]any

	add(map[string]any{
		"@id": ROCrateMetadataFile, "@type": "CreativeWork",
		"conformsTo": ref(ROCrateSpec), "about": ref("./"),
	})
	add(map[string]any{
		"@id": ProcessRunCrate, "@type": "CreativeWork", "name": "Process Run Crate", "version": "0.5",
	})

	// The instrument: the Runfile at its commit, run by runprov.
	app := "#runfile-" + r.Commit
	appEntity := map[string]any{
		"@id": app, "@type": "SoftwareApplication",
		"name":            fmt.Sprintf("Runfile %s at commit %s of repo %s", r.Path, shortHex(r.Commit), r.Repo),
		"softwareVersion": r.Commit,
		"identifier":      "git-blob:" + r.RunfileBlob,
	}
	if runfile != nil {
		files["Runfile"] = runfile
		sum := sha256.Sum256(runfile)
		add(map[string]any{
			"@id": "Runfile", "@type": "File", "name": "Runfile " + r.Path,
			"encodingFormat": "text/plain", "contentSize": fmt.Sprint(len(runfile)), "sha256": hex.EncodeToString(sum[:]),
			"description": fmt.Sprintf("The Runfile as committed at %s (git blob %s)", r.Commit, r.RunfileBlob),
		})
		parts = append(parts, ref("Runfile"))
		appEntity["hasPart"] = ref("Runfile")
	}
	add(appEntity)
	add(map[string]any{
		"@id": "run.json", "@type": "File", "name": "runprov run record",
		"encodingFormat": "application/json", "contentSize": fmt.Sprint(len(files["run.json"])),
		"description": "Everything runprov recorded of the run, as runprov show --json prints it",
	})
	parts = append(parts, ref("run.json"))

	// The image the run's container came from.
	var image string
	if d, ok := sha256Hex(r.ImageDigest); ok {
		image = "#image-" + d
		name, tag := imageNameTag(r.ImageRef)
		img := map[string]any{
			"@id": image, "@type": "ContainerImage",
			"additionalType": ref("https://w3id.org/ro/terms/workflow-run#DockerImage"),
			"name":           name, "sha256": d,
		}
		if reg, _, ok := strings.Cut(name, "/"); ok && strings.ContainsAny(reg, ".:") {
			img["registry"] = reg
		}
		if tag != "" {
			img["tag"] = tag
		}
		if rec.Packages != nil && len(rec.Packages.Packages) > 0 {
			var sw []map[string]any
			for i, pk := range rec.Packages.Packages {
				id := fmt.Sprintf("#software-%d-%s", i+1, provLocal(pk.Name))
				e := map[string]any{
					"@id": id, "@type": "SoftwareApplication", "name": pk.Name, "softwareVersion": pk.Version,
					"identifier": pk.PURL, "description": pk.Ecosystem + " package found at " + pk.Location + " in the image",
				}
				if pk.License != "" {
					e["license"] = pk.License
				}
				add(e)
				sw = append(sw, ref(id))
			}
			img["softwareRequirements"] = sw
		}
		add(img)
	}

	// The person who ran it.
	agent := "#user-" + provLocal(userName(rec)) + "@" + provLocal(r.Hostname)
	add(map[string]any{"@id": agent, "@type": "Person", "name": userName(rec)})

	// Inputs and outputs, referenced where they are on the host.
	fileEntity := func(kind string, f core.FileRecord) map[string]any {
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
	var objects, results []map[string]any
	seen := map[string]bool{}
	for _, f := range r.Inputs {
		e := fileEntity(core.MountInput, f)
		if id := e["@id"].(string); !seen[id] {
			seen[id] = true
			add(e)
			objects = append(objects, ref(id))
			parts = append(parts, ref(id))
		}
	}
	for _, f := range r.Outputs {
		e := fileEntity(core.MountOutput, f)
		if id := e["@id"].(string); !seen[id] {
			seen[id] = true
			add(e)
			results = append(results, ref(id))
			parts = append(parts, ref(id))
		}
	}

	action := "#run-" + r.ID
	act := map[string]any{
		"@id": action, "@type": "CreateAction",
		"name":        "runprov run " + core.ShortRunID(r.ID),
		"description": fmt.Sprintf("%s of %s at %s: %s", strings.Join(r.Argv, " "), r.Path, shortHex(r.Commit), r.Status),
		"instrument":  ref(app),
		"object":      nonNilRefs(objects),
		"result":      nonNilRefs(results),
		"agent":       ref(agent),
		"identifier":  r.ID,
	}
	if image != "" {
		act["containerImage"] = ref(image)
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
		act["actionStatus"] = ref("http://schema.org/CompletedActionStatus")
	case core.RunFailed, core.RunAborted:
		act["actionStatus"] = ref("http://schema.org/FailedActionStatus")
		act["error"] = orUnknown(r.Reason)
	default:
		act["actionStatus"] = ref("http://schema.org/ActiveActionStatus")
	}
	add(act)

	created := r.Ended
	if created.IsZero() {
		created = r.Created
	}
	root := map[string]any{
		"@id": "./", "@type": "Dataset",
		"name":          "runprov run " + r.ID,
		"description":   fmt.Sprintf("Provenance of runprov run %s of %s at commit %s, exported by runprov %s", r.ID, r.Path, r.Commit, orUnknown(opts.Version)),
		"datePublished": rfc3339(created),
		"license":       ref("#license"),
		"conformsTo":    []map[string]any{ref(ProcessRunCrate)},
		"hasPart":       nonNilRefs(parts),
		"mentions":      []map[string]any{ref(action)},
	}
	add(map[string]any{"@id": "#license", "@type": "CreativeWork", "name": "Not stated",
		"description": "runprov does not know the license of the run's data; ask its owner"})
	graph = append([]map[string]any{root}, graph...)

	meta, err := json.MarshalIndent(map[string]any{
		"@context": []any{ROCrateContext, WorkflowRunContext},
		"@graph":   graph,
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	files[ROCrateMetadataFile] = append(meta, '\n')
	return files, nil
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
