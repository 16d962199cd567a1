package history

import (
	"net/url"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
)

// Export identifiers.
const (
	StatementType     = "https://in-toto.io/Statement/v1"
	SLSAPredicateType = "https://slsa.dev/provenance/v1"
	// BuildType names runprov's build type: what externalParameters and
	// internalParameters hold (documented in docs/history.md).
	BuildType = "https://github.com/runprov/runprov/blob/main/docs/history.md#provenance-build-type-run-v1"
	// BuilderID is runprov as the builder of the outputs.
	BuilderID = "https://github.com/runprov/runprov"
	// RunDigest is the digest algorithm name of a subject that is a run
	// (one without output files), whose value is the run id.
	RunDigest = "runprovRunId"
)

// ExportOptions say what the exports cannot find in the run record.
type ExportOptions struct {
	// Version is runprov's version.
	Version string
}

// ResourceDescriptor is in-toto's ResourceDescriptor.
type ResourceDescriptor struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	MediaType   string            `json:"mediaType,omitempty"`
	Annotations map[string]any    `json:"annotations,omitempty"`
}

// Statement is an in-toto Statement v1 carrying SLSA Provenance v1.
type Statement struct {
	Type          string               `json:"_type"`
	Subject       []ResourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     Provenance           `json:"predicate"`
}

// Provenance is the SLSA Provenance v1 predicate.
type Provenance struct {
	BuildDefinition struct {
		BuildType            string               `json:"buildType"`
		ExternalParameters   map[string]any       `json:"externalParameters"`
		InternalParameters   map[string]any       `json:"internalParameters,omitempty"`
		ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies,omitempty"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID      string            `json:"id"`
			Version map[string]string `json:"version,omitempty"`
		} `json:"builder"`
		Metadata struct {
			InvocationID string `json:"invocationId,omitempty"`
			StartedOn    string `json:"startedOn,omitempty"`
			FinishedOn   string `json:"finishedOn,omitempty"`
		} `json:"metadata"`
		Byproducts []ResourceDescriptor `json:"byproducts,omitempty"`
	} `json:"runDetails"`
}

// InToto returns the run as an in-toto Statement v1 whose subjects are the
// run's output files (by sha256) and whose predicate is SLSA Provenance v1:
// the Runfile commit, the image, the packages in the image (when
// inventoried, by package URL) and the input files as resolved dependencies, the run's parameters, runprov as the builder. The subject
// of a run without output files is the run, named by its id (RunDigest).
func InToto(rec *Record, opts ExportOptions) (*Statement, error) {
	r := &rec.Run
	st := &Statement{Type: StatementType, PredicateType: SLSAPredicateType, Subject: statementSubjects(r)}
	bd := &st.Predicate.BuildDefinition
	bd.BuildType = BuildType
	bd.ExternalParameters, bd.InternalParameters = buildParameters(r)
	bd.ResolvedDependencies = resolvedDependencies(rec)
	fillRunDetails(&st.Predicate, r, opts)
	return st, nil
}

// fillRunDetails says who ran the run (runprov and the runtime, with their
// versions), when, and how it ended.
func fillRunDetails(p *Provenance, r *core.Run, opts ExportOptions) {
	rd := &p.RunDetails
	rd.Builder.ID = BuilderID
	rd.Builder.Version = map[string]string{"runprov": orUnknown(opts.Version)}
	if r.Runtime != "" {
		rd.Builder.Version[r.Runtime] = orUnknown(r.RuntimeVersion)
	}
	rd.Metadata.InvocationID = r.ID
	rd.Metadata.StartedOn = rfc3339(r.Started)
	rd.Metadata.FinishedOn = rfc3339(r.Ended)
	status := ResourceDescriptor{Name: "run", URI: "runprov:run/" + r.ID, Annotations: map[string]any{"status": string(r.Status)}}
	if r.ExitCode != nil {
		status.Annotations["exitCode"] = *r.ExitCode
	}
	if r.Reason != "" {
		status.Annotations["reason"] = r.Reason
	}
	rd.Byproducts = append(rd.Byproducts, status)
	if r.SystemKernelSHA256 != "" {
		rd.Byproducts = append(rd.Byproducts, ResourceDescriptor{Name: "system-kernel", URI: "runprov:system-kernel/" + r.SystemKernelSHA256,
			Digest: map[string]string{"sha256": r.SystemKernelSHA256}, MediaType: "application/json"})
	}
}

// statementSubjects are the run's output files by sha256; a run without
// output files (often one that failed) is still a record worth signing: its
// subject is then the run itself.
func statementSubjects(r *core.Run) []ResourceDescriptor {
	subjects := []ResourceDescriptor{}
	for _, f := range r.Outputs {
		if f.SHA256 == "" {
			continue // links have no content to attest
		}
		subjects = append(subjects, ResourceDescriptor{Name: FileLabel(f.Name, f.Path), Digest: map[string]string{"sha256": f.SHA256}})
	}
	if len(subjects) == 0 {
		subjects = append(subjects, ResourceDescriptor{Name: "run", URI: "runprov:run/" + r.ID, Digest: map[string]string{RunDigest: r.ID}})
	}
	return subjects
}

// buildParameters are what the user chose (external) and what runprov
// chose or found (internal).
func buildParameters(r *core.Run) (external, internal map[string]any) {
	inputs := map[string]string{}
	for _, m := range r.Mounts {
		if m.Kind == core.MountInput {
			inputs[m.Name] = m.Source
		}
	}
	external = map[string]any{
		"repo":   r.Repo,
		"path":   r.Path,
		"commit": r.Commit,
		"args":   nonNilMap(r.Args),
		"inputs": inputs,
		"argv":   nonNilSlice(r.Argv),
	}
	internal = map[string]any{
		"user":           r.User,
		"workdir":        r.Workdir,
		"env":            nonNilSlice(r.Env),
		"mounts":         r.Mounts,
		"limits":         r.Limits,
		"runtime":        r.Runtime,
		"runtimeVersion": r.RuntimeVersion,
		"executor":       r.Executor,
		"weakerSandbox":  r.WeakerSandbox,
		"imageApproved":  r.Approved,
		"hostname":       r.Hostname,
		"systemKernel":   r.SystemKernelSHA256,
		"environment":    r.EnvironmentSHA256,
		"runfileLabels":  nonNilMap(r.Labels),
	}
	if r.ReproduceOf != "" {
		internal["reproduceOf"] = r.ReproduceOf
	}
	if r.Note != "" {
		internal["note"] = r.Note
	}
	if len(r.Tags) > 0 {
		// Tags change after a run is signed: a signature covers none (see
		// Signable).
		internal["tags"] = r.Tags
	}
	if a := r.Approval; a != nil {
		internal["imageApproval"] = map[string]string{"keyId": a.KeyID, "envelopeSha256": a.SHA256}
	}
	return external, internal
}

// resolvedDependencies are the Runfile at its commit, the image, the
// packages in it and the input files.
func resolvedDependencies(rec *Record) []ResourceDescriptor {
	r := &rec.Run
	deps := []ResourceDescriptor{{
		Name:   r.Path,
		URI:    "git+runprov:" + r.Repo + "@" + r.Commit + "#" + r.Path,
		Digest: map[string]string{"gitCommit": r.Commit, "gitBlob": r.RunfileBlob},
	}}
	if d, ok := sha256Hex(r.ImageDigest); ok {
		img := ResourceDescriptor{Name: r.ImageRef, URI: ociURI(r.ImageRef, r.ImageDigest), Digest: map[string]string{"sha256": d},
			MediaType: "application/vnd.oci.image.manifest.v1+json", Annotations: map[string]any{}}
		if r.ConfigDigest != "" {
			img.Annotations["configDigest"] = r.ConfigDigest
		}
		if r.IndexDigest != "" {
			img.Annotations["indexDigest"] = r.IndexDigest
		}
		deps = append(deps, img)
	}
	if rec.Packages != nil {
		for _, pk := range rec.Packages.Packages {
			deps = append(deps, ResourceDescriptor{
				Name: pk.Name, URI: pk.PURL,
				Annotations: map[string]any{"ecosystem": pk.Ecosystem, "version": pk.Version, "location": pk.Location, "inImage": r.ImageDigest},
			})
		}
	}
	for _, f := range r.Inputs {
		if f.SHA256 == "" {
			continue
		}
		deps = append(deps, ResourceDescriptor{
			Name: "inputs/" + FileLabel(f.Name, f.Path), Digest: map[string]string{"sha256": f.SHA256},
			Annotations: map[string]any{"input": f.Name, "path": f.Path, "size": f.Size},
		})
	}
	return deps
}

// sha256Hex returns the hex of a "sha256:HEX" digest.
func sha256Hex(d string) (string, bool) {
	h, ok := strings.CutPrefix(d, "sha256:")
	return h, ok && len(h) == 64
}

// ociURI names the image pinned by digest as a package URL
// (pkg:oci/NAME@sha256%3AHEX?repository_url=REPO), as SLSA provenance
// names container images.
func ociURI(ref, digest string) string {
	name, _ := imageNameTag(ref)
	last := name[strings.LastIndexByte(name, '/')+1:]
	if last == "" {
		last = "image"
	}
	u := "pkg:oci/" + url.PathEscape(strings.ToLower(last)) + "@" + url.QueryEscape(digest)
	if name != "" {
		u += "?repository_url=" + url.QueryEscape(name)
	}
	return u
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nonNilSlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Signable is r as a signature covers it: without its tags, which
// runprov tag gives and takes away after the run was signed. The note is
// kept: run --note sets it before the run starts.
func Signable(r core.Run) core.Run {
	r.Tags = nil
	return r
}
