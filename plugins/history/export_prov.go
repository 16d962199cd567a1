package history

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/runprov/runprov/core"
)

// ProvNamespace is the namespace of runprov's PROV identifiers and attributes.
const ProvNamespace = "https://github.com/runprov/runprov/ns/prov#"

// ProvDocument is a W3C PROV-JSON document: records keyed by identifier,
// grouped by kind (https://www.w3.org/submissions/prov-json/).
type ProvDocument struct {
	Prefix            map[string]string         `json:"prefix"`
	Entity            map[string]map[string]any `json:"entity"`
	Activity          map[string]map[string]any `json:"activity"`
	Agent             map[string]map[string]any `json:"agent"`
	Used              map[string]map[string]any `json:"used,omitempty"`
	WasGeneratedBy    map[string]map[string]any `json:"wasGeneratedBy,omitempty"`
	WasAssociatedWith map[string]map[string]any `json:"wasAssociatedWith,omitempty"`
	WasAttributedTo   map[string]map[string]any `json:"wasAttributedTo,omitempty"`
	ActedOnBehalfOf   map[string]map[string]any `json:"actedOnBehalfOf,omitempty"`
	WasInformedBy     map[string]map[string]any `json:"wasInformedBy,omitempty"`
}

// typed is a PROV-JSON typed literal.
func typed(v, typ string) map[string]any { return map[string]any{"$": v, "type": typ} }

func qname(v string) map[string]any { return typed(v, "prov:QUALIFIED_NAME") }

// provLocal escapes a path for the local part of a qualified name: PROV-N
// allows letters, digits, "/", ".", "-", "_" and percent escapes.
func provLocal(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '/', c == '.', c == '-', c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Prov returns the run as W3C PROV-JSON: an activity for the run; entities
// for the Runfile (the plan), the image, each input and each output file;
// agents for the user who ran it and for runprov, which acted on the
// user's behalf; used, wasGeneratedBy, wasAssociatedWith, wasAttributedTo
// and, for a reproduction, wasInformedBy the original run.
func Prov(rec *Record, opts ExportOptions) *ProvDocument {
	r := &rec.Run
	b := &provBuilder{doc: &ProvDocument{
		Prefix: map[string]string{
			"runprov": ProvNamespace,
			"xsd":     "http://www.w3.org/2001/XMLSchema#",
			"prov":    "http://www.w3.org/ns/prov#",
		},
		Entity: map[string]map[string]any{}, Activity: map[string]map[string]any{}, Agent: map[string]map[string]any{},
		Used: map[string]map[string]any{}, WasGeneratedBy: map[string]map[string]any{},
		WasAssociatedWith: map[string]map[string]any{}, WasAttributedTo: map[string]map[string]any{},
		ActedOnBehalfOf: map[string]map[string]any{},
	}}
	doc := b.doc
	run := "runprov:run/" + r.ID
	act := provActivity(r)
	doc.Activity[run] = act

	// The user, and runprov acting for them.
	user := "runprov:user/" + provLocal(userName(rec)) + "@" + provLocal(r.Hostname)
	ua := map[string]any{"prov:type": qname("prov:Person"), "prov:label": userName(rec), "runprov:hostname": r.Hostname}
	if e := rec.Environment; e != nil {
		ua["runprov:uid"] = typed(strconv.Itoa(e.UID), "xsd:int")
		ua["runprov:gid"] = typed(strconv.Itoa(e.GID), "xsd:int")
	}
	doc.Agent[user] = ua
	tool := "runprov:software/runprov"
	doc.Agent[tool] = map[string]any{"prov:type": qname("prov:SoftwareAgent"), "prov:label": "runprov " + orUnknown(opts.Version)}
	b.rel(doc.ActedOnBehalfOf, map[string]any{"prov:delegate": tool, "prov:responsible": user, "prov:activity": run})

	// The Runfile is the plan the run followed.
	runfile := "runprov:runfile/" + r.Commit + "/" + provLocal(r.Path)
	doc.Entity[runfile] = map[string]any{
		"prov:type": qname("prov:Plan"), "prov:label": r.Path,
		"runprov:repo": r.Repo, "runprov:commit": r.Commit, "runprov:git_blob": r.RunfileBlob,
	}
	b.rel(doc.WasAssociatedWith, map[string]any{"prov:activity": run, "prov:agent": user, "prov:plan": runfile})
	b.rel(doc.WasAssociatedWith, map[string]any{"prov:activity": run, "prov:agent": tool, "prov:plan": runfile})
	b.rel(doc.Used, map[string]any{"prov:activity": run, "prov:entity": runfile, "prov:role": qname("runprov:runfile")})

	b.image(r, run)
	b.files(r, run, user)
	if r.ReproduceOf != "" {
		orig := "runprov:run/" + r.ReproduceOf
		doc.Activity[orig] = map[string]any{"prov:type": qname("runprov:Run"), "prov:label": "runprov run " + core.ShortRunID(r.ReproduceOf)}
		doc.WasInformedBy = map[string]map[string]any{}
		b.rel(doc.WasInformedBy, map[string]any{"prov:informed": run, "prov:informant": orig})
		if r.Verdict != "" {
			act["runprov:verdict"] = r.Verdict
		}
	}
	return doc
}

// provActivity is the run as a PROV activity.
func provActivity(r *core.Run) map[string]any {
	act := map[string]any{
		"prov:type":          qname("runprov:Run"),
		"prov:label":         "runprov run " + core.ShortRunID(r.ID),
		"runprov:status":     string(r.Status),
		"runprov:runtime":    r.Runtime + " " + r.RuntimeVersion,
		"runprov:executor":   r.Executor,
		"runprov:user":       r.User,
		"runprov:argv":       strings.Join(r.Argv, " "),
		"runprov:hostname":   r.Hostname,
		"runprov:created_at": typed(rfc3339(r.Created), "xsd:dateTime"),
	}
	if !r.Started.IsZero() {
		act["prov:startTime"] = rfc3339(r.Started)
	}
	if !r.Ended.IsZero() {
		act["prov:endTime"] = rfc3339(r.Ended)
	}
	if r.ExitCode != nil {
		act["runprov:exit_code"] = typed(strconv.Itoa(*r.ExitCode), "xsd:int")
	}
	if r.Reason != "" {
		act["runprov:reason"] = r.Reason
	}
	if r.SystemKernelSHA256 != "" {
		act["runprov:system_kernel_sha256"] = r.SystemKernelSHA256
	}
	for k, v := range r.Args {
		act["runprov:arg_"+provLocal(k)] = v
	}
	if r.Note != "" {
		act["runprov:note"] = r.Note
	}
	if len(r.Tags) > 0 {
		act["runprov:tags"] = r.Tags
	}
	return act
}

// provBuilder fills a PROV document, numbering its relations in order.
type provBuilder struct {
	doc *ProvDocument
	n   int
}

func (b *provBuilder) rel(m map[string]map[string]any, attrs map[string]any) {
	b.n++
	m["_:r"+strconv.Itoa(b.n)] = attrs
}

// image adds the run's image, which the run used.
func (b *provBuilder) image(r *core.Run, run string) {
	if r.ImageDigest == "" {
		return
	}
	img := "runprov:image/" + provLocal(r.ImageDigest)
	ia := map[string]any{"prov:type": qname("runprov:ContainerImage"), "prov:label": r.ImageRef,
		"runprov:digest": r.ImageDigest, "runprov:approved": r.Approved}
	if r.ConfigDigest != "" {
		ia["runprov:config_digest"] = r.ConfigDigest
	}
	if r.IndexDigest != "" {
		ia["runprov:index_digest"] = r.IndexDigest
	}
	b.doc.Entity[img] = ia
	b.rel(b.doc.Used, map[string]any{"prov:activity": run, "prov:entity": img, "prov:role": qname("runprov:image")})
}

// files adds the inputs the run used and the outputs it generated,
// attributed to user.
func (b *provBuilder) files(r *core.Run, run, user string) {
	file := func(kind string, f core.FileRecord) (string, map[string]any) {
		id := "runprov:" + kind + "/" + r.ID + "/" + provLocal(FileLabel(f.Name, f.Path))
		a := map[string]any{"prov:type": qname("runprov:File"), "prov:label": FileLabel(f.Name, f.Path),
			"runprov:size": typed(strconv.FormatInt(f.Size, 10), "xsd:long")}
		if f.SHA256 != "" {
			a["runprov:sha256"] = f.SHA256
		}
		if f.Link != "" {
			a["runprov:link"] = f.Link
		}
		return id, a
	}
	for _, f := range r.Inputs {
		id, a := file("input", f)
		b.doc.Entity[id] = a
		b.rel(b.doc.Used, map[string]any{"prov:activity": run, "prov:entity": id, "prov:role": qname("runprov:input")})
	}
	var end any
	if !r.Ended.IsZero() {
		end = rfc3339(r.Ended)
	}
	for _, f := range r.Outputs {
		id, a := file("output", f)
		b.doc.Entity[id] = a
		g := map[string]any{"prov:entity": id, "prov:activity": run}
		if end != nil {
			g["prov:time"] = end
		}
		b.rel(b.doc.WasGeneratedBy, g)
		b.rel(b.doc.WasAttributedTo, map[string]any{"prov:entity": id, "prov:agent": user})
	}
}

func userName(rec *Record) string {
	if rec.Environment != nil && rec.Environment.User != "" {
		return rec.Environment.User
	}
	if rec.Environment != nil {
		return "uid" + strconv.Itoa(rec.Environment.UID)
	}
	return "unknown"
}

// fileURI is a file:// URL of a host path.
func fileURI(p string) string {
	return (&url.URL{Scheme: "file", Path: p}).String()
}
