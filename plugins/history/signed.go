package history

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/runprov/runprov/core"
)

// StatementJSON is the statement as runprov export --format intoto prints
// it: these exact bytes are what a run record's signature signs.
func StatementJSON(st *Statement) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// SignedVersion is the runprov version a signed statement names as its
// builder's, so that the record re-derived by a later runprov compares
// equal when nothing else changed.
func SignedVersion(payload []byte) string {
	var st Statement
	if json.Unmarshal(payload, &st) != nil {
		return ""
	}
	return st.Predicate.RunDetails.Builder.Version["runprov"]
}

// DiffStatement compares a signed statement with the one derived from the
// store's current record and returns each differing field as
// "PATH: signed X, stored Y" (arrays of named descriptors are keyed by
// name, e.g. subject[/outputs/a.txt].digest.sha256); nil when they agree.
func DiffStatement(signed []byte, current *Statement) ([]string, error) {
	var a, b any
	if err := json.Unmarshal(signed, &a); err != nil {
		return nil, fmt.Errorf("%w: the signed payload is not JSON: %v", core.ErrUnverified, err)
	}
	cur, err := json.Marshal(current)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(cur, &b); err != nil {
		return nil, err
	}
	var diffs []string
	diffJSON("", a, b, &diffs)
	return diffs, nil
}

func diffJSON(p string, a, b any, out *[]string) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range av {
			keys[k] = true
		}
		for k := range bv {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			diffJSON(joinPath(p, k), av[k], bv[k], out)
		}
		return
	case []any:
		bv, ok := b.([]any)
		if !ok {
			break
		}
		an, bn := byName(av), byName(bv)
		if an != nil && bn != nil {
			keys := map[string]bool{}
			for k := range an {
				keys[k] = true
			}
			for k := range bn {
				keys[k] = true
			}
			for _, k := range sortedKeys(keys) {
				diffJSON(p+"["+k+"]", an[k], bn[k], out)
			}
			return
		}
		if len(av) == len(bv) {
			for i := range av {
				diffJSON(fmt.Sprintf("%s[%d]", p, i), av[i], bv[i], out)
			}
			return
		}
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, fmt.Sprintf("%s: signed %s, stored %s", p, jsonValue(a), jsonValue(b)))
	}
}

// byName keys an array of objects by their unique "name"; nil otherwise.
func byName(v []any) map[string]any {
	m := map[string]any{}
	for _, e := range v {
		o, ok := e.(map[string]any)
		if !ok {
			return nil
		}
		n, ok := o["name"].(string)
		if _, dup := m[n]; !ok || dup {
			return nil
		}
		m[n] = o
	}
	return m
}

func sortedKeys(m map[string]bool) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func joinPath(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

func jsonValue(v any) string {
	if v == nil {
		return "nothing"
	}
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// OutputMismatch is an output file on disk that is missing or does not hash
// to its subject's sha256.
type OutputMismatch struct {
	Subject string // the subject's name
	File    string // where it was looked for
	Want    string // the signed sha256
	Got     string // "" when missing
	Err     error  // why it could not be read
}

func (m OutputMismatch) String() string {
	switch {
	case m.Got == "" && errors.Is(m.Err, os.ErrNotExist):
		return fmt.Sprintf("%s: missing (%s)", m.Subject, m.File)
	case m.Got == "":
		return fmt.Sprintf("%s: cannot read %s: %v", m.Subject, m.File, m.Err)
	}
	return fmt.Sprintf("%s: %s has sha256 %s, signed %s", m.Subject, m.File, m.Got, m.Want)
}

// CheckOutputs hashes, for every subject of st with a sha256, the file it
// names under dir (laid out as run --outputs DIR lays it out) and returns the
// files that are missing or differ, in subject order. It hashes on every CPU.
func CheckOutputs(ctx context.Context, st *Statement, dir string) ([]OutputMismatch, error) {
	roots := outputRoots(st)
	type job struct {
		i    int
		subj ResourceDescriptor
	}
	results := make([]*OutputMismatch, len(st.Subject))
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				results[j.i] = checkSubject(j.subj, dir, roots)
			}
		}()
	}
	var err error
	for i, s := range st.Subject {
		if _, ok := s.Digest["sha256"]; !ok {
			continue
		}
		if err = ctx.Err(); err != nil {
			break
		}
		jobs <- job{i, s}
	}
	close(jobs)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	var out []OutputMismatch
	for _, m := range results {
		if m != nil {
			out = append(out, *m)
		}
	}
	return out, nil
}

func checkSubject(s ResourceDescriptor, dir string, roots outputLayout) *OutputMismatch {
	want := s.Digest["sha256"]
	file := filepath.Join(dir, filepath.FromSlash(roots.rel(s.Name)))
	m := &OutputMismatch{Subject: s.Name, File: file, Want: want}
	got, err := core.FileSHA256(file)
	if err != nil {
		m.Err = err
		return m
	}
	if got != want {
		m.Got = got
		return m
	}
	return nil
}

// outputLayout maps subject names (OUTPUT container path + "/" + file path)
// to paths under --outputs DIR: one host directory for all OUTPUT targets
// (one OUTPUT line, or the TRE layout) holds the files themselves; several
// hold each OUTPUT's files under its container path.
type outputLayout struct {
	targets []string
	shared  bool
}

func outputRoots(st *Statement) outputLayout {
	var l outputLayout
	sources := map[string]bool{}
	b, _ := json.Marshal(st.Predicate.BuildDefinition.InternalParameters["mounts"])
	var mounts []core.RunMount
	json.Unmarshal(b, &mounts)
	for _, m := range mounts {
		if m.Kind == core.MountOutput {
			l.targets = append(l.targets, m.Target)
			sources[m.Source] = true
		}
	}
	l.shared = len(sources) <= 1
	// Longest first, so that /out/sub wins over /out.
	slices.SortFunc(l.targets, func(a, b string) int { return len(b) - len(a) })
	return l
}

func (l outputLayout) rel(name string) string {
	for _, t := range l.targets {
		if rest, ok := strings.CutPrefix(name, strings.TrimSuffix(t, "/")+"/"); ok {
			if l.shared {
				return rest
			}
			return path.Join(strings.TrimPrefix(t, "/"), rest)
		}
	}
	return strings.TrimPrefix(name, "/")
}
