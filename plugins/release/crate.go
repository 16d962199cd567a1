package release

import (
	"encoding/json"
	"fmt"
	"path"
)

// Five Safes RO-Crate (TRE-FX) terms.
const (
	fiveSafesProfile = "https://w3id.org/5s-crate/0.4"
	shpDisclosure    = "https://w3id.org/shp#DisclosureCheck"
	shpSignOff       = "https://w3id.org/shp#SignOff"
	statusCompleted  = "http://schema.org/CompletedActionStatus"
	statusFailed     = "http://schema.org/FailedActionStatus"
	statusPotential  = "http://schema.org/PotentialActionStatus"
)

type obj = map[string]any

func ref(id string) obj { return obj{"@id": id} }

func refs(ids []string) []any {
	out := []any{}
	for _, id := range ids {
		out = append(out, ref(id))
	}
	return out
}

func personID(p Person) string { return fmt.Sprintf("#person-%d", p.UID) }

// fiveSafesCrate describes a release as a Five Safes RO-Crate: the
// released files, the request (a CreateAction by the requester), the run
// that made them (a CreateAction), each checker's review (an AssessAction
// of type DisclosureCheck) and the approval of the release (an AssessAction
// of type SignOff by whoever exported it under the policy).
func fiveSafesCrate(b *Bundle, votes []CastVote, files []File, statement []byte, in ExportInput) ([]byte, error) {
	q := b.Request
	var graph []any
	people := map[string]obj{}
	person := func(p Person) obj {
		id := personID(p)
		if people[id] == nil {
			people[id] = obj{"@id": id, "@type": "Person", "name": p.User, "identifier": fmt.Sprintf("uid %d", p.UID)}
		}
		return ref(id)
	}
	var fileIDs []string
	for _, f := range files {
		fileIDs = append(fileIDs, f.Name)
	}
	var exportedAt string
	var st releaseStatement
	if err := json.Unmarshal(statement, &st); err != nil {
		return nil, err
	}
	exportedAt = st.Predicate.ExportedAt
	mentions := []string{"#request-" + q.ID, "#run-" + q.Run.ID}
	graph = append(graph,
		obj{"@id": "ro-crate-metadata.json", "@type": "CreativeWork", "about": ref("./"), "conformsTo": ref("https://w3id.org/ro/crate/1.1")},
		nil, // the root, once mentions are known
		obj{"@id": fiveSafesProfile, "@type": []any{"CreativeWork", "Profile"}, "name": "Five Safes RO-Crate profile", "version": "0.4"},
		obj{"@id": "#license", "@type": "CreativeWork", "name": "Not stated", "description": "the release's terms are the TRE's; ask its output checkers"},
		obj{"@id": "#policy", "@type": "CreativeWork", "name": "runprov site policy", "description": policyText(q.Policy, st.Predicate.ReviewsRequired)},
		obj{"@id": "#request-" + q.ID, "@type": "CreateAction", "name": "Release request " + q.ID, "description": q.Note,
			"agent": person(q.Requester), "object": refs(fileIDs), "startTime": q.Created, "actionStatus": statusCompleted,
			"identifier": "sha256:" + b.SHA256},
		obj{"@id": "#run-" + q.Run.ID, "@type": "CreateAction", "name": "runprov run " + q.Run.ID,
			"description": fmt.Sprintf("Runfile %s at commit %s, image %s; record %s (sha256 %s, signed: %t)", q.Run.Path, q.Run.Commit, q.Run.Image, q.Run.Record, q.Run.RecordSHA256, q.Run.Signed),
			"agent":       person(q.Requester), "result": refs(fileIDs), "actionStatus": statusCompleted, "identifier": q.Run.ID},
	)
	reviews, ids := reviewEntities(votes, fileIDs, q.ID, person)
	graph, mentions = append(graph, reviews...), append(mentions, ids...)
	mentions = append(mentions, "#signoff")
	graph = append(graph, obj{"@id": "#signoff", "@type": "AssessAction", "additionalType": ref(shpSignOff),
		"name":  fmt.Sprintf("Release approved: %d file(s), each with %d independent approvals", len(files), st.Predicate.ReviewsRequired),
		"agent": person(in.Actor), "object": ref("./"), "instrument": ref("#policy"), "endTime": exportedAt, "actionStatus": statusCompleted})
	for _, f := range files {
		graph = append(graph, obj{"@id": f.Name, "@type": "File", "name": path.Base(f.Name), "contentSize": fmt.Sprint(f.Size),
			"encodingFormat": mediaType(f.Name), "sha256": f.SHA256})
	}
	graph = append(graph, obj{"@id": EnvelopeFile, "@type": "File", "name": "Signed in-toto statement of the release",
		"encodingFormat": "application/json", "about": refs(fileIDs)})
	for _, id := range sortedKeys(people) {
		graph = append(graph, people[id])
	}
	graph[1] = obj{"@id": "./", "@type": "Dataset", "name": "Release " + q.ID, "description": q.Note, "datePublished": exportedAt,
		"license": ref("#license"), "conformsTo": ref(fiveSafesProfile), "hasPart": refs(append(fileIDs, EnvelopeFile)), "mentions": refs(mentions)}
	return json.MarshalIndent(obj{"@context": "https://w3id.org/ro/crate/1.1/context", "@graph": graph}, "", "  ")
}

func voteStatus(d string) string {
	switch d {
	case Approve:
		return statusCompleted
	case Reject:
		return statusFailed
	}
	return statusPotential
}

func policyText(p string, n int) string {
	if p == "" {
		p = "no policy file"
	}
	return fmt.Sprintf("%s: %d independent approvals by output checkers' keys release a file", p, n)
}

// mediaTypes are fixed here: mime.TypeByExtension depends on the host.
var mediaTypes = map[string]string{"csv": "text/csv", "tsv": "text/tab-separated-values", "txt": "text/plain", "md": "text/markdown",
	"json": "application/json", "png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf", "html": "text/html"}

func mediaType(name string) string {
	if t := mediaTypes[FileType(name)]; t != "" {
		return t
	}
	return "application/octet-stream"
}

// reviewEntities are the checkers' verified votes as DisclosureCheck
// actions on the released files they name, and their ids.
func reviewEntities(votes []CastVote, fileIDs []string, reqID string, person func(Person) obj) ([]any, []string) {
	released := map[string]bool{}
	for _, f := range fileIDs {
		released[f] = true
	}
	var out []any
	var ids []string
	for i, v := range votes {
		if !v.Verified {
			continue
		}
		id := fmt.Sprintf("#review-%d", i+1)
		ids = append(ids, id)
		var voted []string
		for _, n := range sortedKeys(v.Files) {
			if released[n] {
				voted = append(voted, n)
			}
		}
		out = append(out, obj{"@id": id, "@type": "AssessAction", "additionalType": ref(shpDisclosure),
			"name": "Disclosure check: " + v.Decision, "description": v.Note, "agent": person(v.Checker),
			"object": refs(append(voted, "#request-"+reqID)), "endTime": v.Time, "actionStatus": voteStatus(v.Decision),
			"identifier": "key " + v.Checker.KeyID + ", vote sha256:" + v.SHA256})
	}
	return out, ids
}
