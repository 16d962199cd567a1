package history

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/env"
)

// Side is one run as Compare sees it.
type Side struct {
	Run *core.Run
	// Runfile is the Runfile text at the run's commit; nil when not read
	// (then only the commit and blob ids are compared).
	Runfile []byte
	// SystemKernel is the run's snapshot; nil when none is recorded.
	SystemKernel *core.SystemKernel
	// Environment is the run's environments row; nil when not recorded.
	Environment *core.Environment
	// Packages is the inventory of the run's image; nil when unknown (then
	// packages are not compared).
	Packages []core.Package
}

// Change is one value that differs between run A and run B.
type Change struct {
	Field string `json:"field"`
	A     any    `json:"a"` // nil: A lacks it
	B     any    `json:"b"` // nil: B lacks it
	// Info marks a difference that does not make the runs differ: where
	// outputs went on the host, the Slurm job, the tag of a digest-pinned image.
	Info bool `json:"informational,omitempty"`
}

// FileChange is one manifest entry that was added, removed or changed.
type FileChange struct {
	Name string           `json:"name"` // INPUT name or OUTPUT path
	Path string           `json:"path"`
	A    *core.FileRecord `json:"a,omitempty"`
	B    *core.FileRecord `json:"b,omitempty"`
}

// FilesDiff compares two manifests by (name, path) and content hash.
type FilesDiff struct {
	Added   []FileChange `json:"added"`
	Removed []FileChange `json:"removed"`
	Changed []FileChange `json:"changed"`
	Same    int          `json:"same"`
}

// Differs reports whether any file was added, removed or changed.
func (f FilesDiff) Differs() bool { return len(f.Added)+len(f.Removed)+len(f.Changed) > 0 }

// KernelDiff compares two SystemKernel snapshots.
type KernelDiff struct {
	A string `json:"a"` // system_kernels.sha256
	B string `json:"b"`
	// Summary is env.Compare's drift line, as `runprov run` prints it.
	Summary string `json:"summary"`
	// NotCompared are sources either snapshot could not read.
	NotCompared []string `json:"not_compared,omitempty"`
	// Changes are every differing key of the snapshots, with values:
	// "sysctls.vm.swappiness", and set members of lists ("modules").
	Changes []Change `json:"changes"`
	// Significant is false when the snapshots differ only in sources that
	// were not compared.
	Significant bool `json:"significant"`
}

// Diff is what differs between two runs, section by section.
type Diff struct {
	A          string `json:"a"`
	B          string `json:"b"`
	Equivalent bool   `json:"equivalent"`

	Runfile []Change `json:"runfile"`
	// RunfileDiff is a unified diff of the two Runfiles when their texts differ.
	RunfileDiff  string      `json:"runfile_diff,omitempty"`
	Image        []Change    `json:"image"`
	Args         []Change    `json:"args"`
	Env          []Change    `json:"env"`
	Mounts       []Change    `json:"mounts"`
	Runtime      []Change    `json:"runtime"`
	Host         []Change    `json:"host"`
	SystemKernel *KernelDiff `json:"system_kernel,omitempty"`
	Inputs       FilesDiff   `json:"inputs"`
	Outputs      FilesDiff   `json:"outputs"`
	// Packages compares the images' inventories; nil when either is unknown.
	Packages *PackagesDiff `json:"packages,omitempty"`
	Exit     []Change      `json:"exit"`
	// DurationSeconds are the two runs' durations; never a difference.
	DurationSeconds [2]float64 `json:"duration_seconds"`
}

// runToken stands for a run's own id inside its values (the default outputs
// directory STORE/runs/ID/outputs, an env var naming the run), so two runs
// compare equal there.
const runToken = "<run>"

// Compare returns what differs between runs a and b. It is pure and linear
// in the manifests' sizes.
func Compare(a, b Side) *Diff {
	ra, rb := a.Run, b.Run
	d := &Diff{A: ra.ID, B: rb.ID}
	na := func(s string) string { return normID(s, ra.ID) }
	nb := func(s string) string { return normID(s, rb.ID) }

	d.Runfile, d.RunfileDiff = compareRunfiles(a, b)
	d.Image = cmpStr(nil, "image_ref", ra.ImageRef, rb.ImageRef, ra.ImageDigest == rb.ImageDigest)
	d.Image = cmpStr(d.Image, "image_digest", ra.ImageDigest, rb.ImageDigest, false)
	d.Image = cmpStr(d.Image, "index_digest", ra.IndexDigest, rb.IndexDigest, false)
	d.Image = cmpStr(d.Image, "config_digest", ra.ConfigDigest, rb.ConfigDigest, false)
	d.Image = cmpAny(d.Image, "approved", ra.Approved, rb.Approved, true)

	d.Args = cmpMap(nil, "", mapVals(ra.Args, na), mapVals(rb.Args, nb), false)
	d.Env = cmpMap(nil, "", envMap(ra.Env, na), envMap(rb.Env, nb), false)
	d.Mounts = cmpMounts(ra, rb)
	d.Runtime = compareRuntimes(ra, rb, na, nb)
	d.Host = compareHosts(a, b)
	d.SystemKernel = compareKernels(ra.SystemKernelSHA256, rb.SystemKernelSHA256, a.SystemKernel, b.SystemKernel)

	d.Inputs = CompareFiles(ra.Inputs, rb.Inputs)
	d.Outputs = CompareFiles(ra.Outputs, rb.Outputs)
	if a.Packages != nil && b.Packages != nil {
		pd := ComparePackages(a.Packages, b.Packages)
		d.Packages = &pd
	}
	d.Exit = compareExits(ra, rb)
	d.DurationSeconds = [2]float64{Duration(ra).Seconds(), Duration(rb).Seconds()}
	d.Equivalent = equivalent(d)
	return d
}

// compareRunfiles compares the runs' Runfiles: the text decides; a new
// commit with the same Runfile blob is only informational.
func compareRunfiles(a, b Side) ([]Change, string) {
	ra, rb := a.Run, b.Run
	sameBlob := ra.RunfileBlob == rb.RunfileBlob && ra.RunfileBlob != ""
	if a.Runfile != nil && b.Runfile != nil {
		sameBlob = string(a.Runfile) == string(b.Runfile)
	}
	c := cmpStr(nil, "repo", ra.Repo, rb.Repo, true)
	c = cmpStr(c, "path", ra.Path, rb.Path, sameBlob)
	c = cmpStr(c, "commit", ra.Commit, rb.Commit, sameBlob)
	c = cmpStr(c, "runfile_blob", ra.RunfileBlob, rb.RunfileBlob, sameBlob)
	c = cmpMap(c, "labels", ra.Labels, rb.Labels, false)
	if sameBlob || a.Runfile == nil || b.Runfile == nil {
		return c, ""
	}
	return c, Unified("a/"+ra.Path+" ("+shortHex(ra.Commit)+")", "b/"+rb.Path+" ("+shortHex(rb.Commit)+")", a.Runfile, b.Runfile, 3)
}

// compareRuntimes compares how the runs were run: command, user, limits,
// runtime and devices.
func compareRuntimes(ra, rb *core.Run, na, nb func(string) string) []Change {
	c := cmpAny(nil, "argv", sliceVals(ra.Argv, na), sliceVals(rb.Argv, nb), false)
	c = cmpStr(c, "user", ra.User, rb.User, false)
	c = cmpStr(c, "workdir", ra.Workdir, rb.Workdir, false)
	c = cmpAny(c, "limits.cpus", ra.Limits.CPUs, rb.Limits.CPUs, false)
	c = cmpAny(c, "limits.memory_bytes", ra.Limits.MemoryBytes, rb.Limits.MemoryBytes, false)
	c = cmpAny(c, "limits.pids", ra.Limits.Pids, rb.Limits.Pids, false)
	c = cmpAny(c, "limits.timeout", ra.Limits.Timeout.String(), rb.Limits.Timeout.String(), false)
	c = cmpStr(c, "limits.note", ra.Limits.Note, rb.Limits.Note, false)
	c = cmpStr(c, "runtime", ra.Runtime, rb.Runtime, false)
	c = cmpStr(c, "runtime_version", ra.RuntimeVersion, rb.RuntimeVersion, false)
	c = cmpAny(c, "weaker_sandbox", ra.WeakerSandbox, rb.WeakerSandbox, false)
	c = cmpStr(c, "executor", ra.Executor, rb.Executor, false)
	c = cmpAny(c, "devices", ra.Devices, rb.Devices, false)
	return cmpAny(c, "cdi_specs", ra.CDISpecs, rb.CDISpecs, false)
}

// compareHosts compares where the runs ran: the host, its user and the
// Slurm job (informational).
func compareHosts(a, b Side) []Change {
	ra, rb := a.Run, b.Run
	c := cmpStr(nil, "hostname", ra.Hostname, rb.Hostname, false)
	if a.Environment != nil && b.Environment != nil {
		ea, eb := a.Environment, b.Environment
		c = cmpStr(c, "user", ea.User, eb.User, false)
		c = cmpAny(c, "uid", ea.UID, eb.UID, false)
		c = cmpAny(c, "gid", ea.GID, eb.GID, false)
		c = cmpAny(c, "groups", ea.Groups, eb.Groups, false)
	} else {
		c = cmpStr(c, "environment_sha256", ra.EnvironmentSHA256, rb.EnvironmentSHA256, false)
	}
	var ja, jb any
	if ra.Slurm != nil {
		ja = *ra.Slurm
	}
	if rb.Slurm != nil {
		jb = *rb.Slurm
	}
	return cmpAny(c, "slurm", ja, jb, true)
}

// compareExits compares how the runs ended, step by step.
func compareExits(ra, rb *core.Run) []Change {
	c := cmpStr(nil, "status", string(ra.Status), string(rb.Status), false)
	var xa, xb any
	if ra.ExitCode != nil {
		xa = *ra.ExitCode
	}
	if rb.ExitCode != nil {
		xb = *rb.ExitCode
	}
	c = cmpAny(c, "exit_code", xa, xb, false)
	c = cmpStr(c, "reason", ra.Reason, rb.Reason, false)
	for i := range max(len(ra.Steps), len(rb.Steps)) {
		var sa, sb any
		if i < len(ra.Steps) {
			sa = ra.Steps[i].ExitCode
		}
		if i < len(rb.Steps) {
			sb = rb.Steps[i].ExitCode
		}
		c = cmpAny(c, fmt.Sprintf("steps[%d].exit_code", i), sa, sb, false)
	}
	return c
}

// equivalent: no change but informational ones, no significant kernel
// difference, the same inputs and outputs.
func equivalent(d *Diff) bool {
	for _, sec := range [][]Change{d.Runfile, d.Image, d.Args, d.Env, d.Mounts, d.Runtime, d.Host, d.Exit} {
		for _, c := range sec {
			if !c.Info {
				return false
			}
		}
	}
	return !(d.SystemKernel != nil && d.SystemKernel.Significant || d.Inputs.Differs() || d.Outputs.Differs())
}

// CompareFiles compares two manifests by (name, path): entries only in a
// are removed, only in b added, in both with another hash, size or link
// target changed. Results are sorted by name and path.
func CompareFiles(a, b []core.FileRecord) FilesDiff {
	fd := FilesDiff{Added: []FileChange{}, Removed: []FileChange{}, Changed: []FileChange{}}
	key := func(f *core.FileRecord) string { return f.Name + "\x00" + f.Path }
	inB := make(map[string]*core.FileRecord, len(b))
	for i := range b {
		inB[key(&b[i])] = &b[i]
	}
	seen := make(map[string]bool, len(a))
	for i := range a {
		fa := &a[i]
		k := key(fa)
		seen[k] = true
		fb, ok := inB[k]
		switch {
		case !ok:
			fd.Removed = append(fd.Removed, FileChange{Name: fa.Name, Path: fa.Path, A: fa})
		case fa.SHA256 != fb.SHA256 || fa.Size != fb.Size || fa.Link != fb.Link:
			fd.Changed = append(fd.Changed, FileChange{Name: fa.Name, Path: fa.Path, A: fa, B: fb})
		default:
			fd.Same++
		}
	}
	for i := range b {
		if !seen[key(&b[i])] {
			fd.Added = append(fd.Added, FileChange{Name: b[i].Name, Path: b[i].Path, B: &b[i]})
		}
	}
	for _, l := range [][]FileChange{fd.Added, fd.Removed, fd.Changed} {
		sort.Slice(l, func(i, j int) bool {
			if l[i].Name != l[j].Name {
				return l[i].Name < l[j].Name
			}
			return l[i].Path < l[j].Path
		})
	}
	return fd
}

// compareKernels is nil when both runs share one snapshot (or neither has one).
func compareKernels(shaA, shaB string, ka, kb *core.SystemKernel) *KernelDiff {
	if shaA == shaB {
		return nil
	}
	kd := &KernelDiff{A: shaA, B: shaB, Changes: []Change{}, Significant: true}
	switch {
	case ka != nil && kb != nil:
		dr := env.Compare(ka, kb)
		kd.Summary, kd.NotCompared = dr.Summary(), dr.NotCompared
		kd.Significant = !dr.Empty()
		if !kd.Significant {
			kd.Summary = "differs only in sources not compared: " + strings.Join(dr.NotCompared, ", ")
		}
	case ka == nil && kb == nil:
		kd.Summary = "no snapshot on either side"
	case ka == nil:
		kd.Summary = "only run B has a snapshot"
	default:
		kd.Summary = "only run A has a snapshot"
	}
	kd.Changes = JSONChanges(snapshotJSON(ka), snapshotJSON(kb))
	return kd
}

// JSONChanges compares two JSON documents key by key: objects are walked
// (keys joined with "."), lists of scalars are compared as sets (a member
// only in A is a Change with B nil), anything else by value. Sorted by field.
func JSONChanges(a, b json.RawMessage) []Change {
	fa, fb := map[string]leaf{}, map[string]leaf{}
	flatten("", decode(a), fa)
	flatten("", decode(b), fb)
	out := []Change{}
	for k, la := range fa {
		lb, ok := fb[k]
		switch {
		case !ok:
			c := Change{Field: la.field, A: la.v}
			out = append(out, c)
		case !la.set && string(mustJSON(la.v)) != string(mustJSON(lb.v)):
			out = append(out, Change{Field: la.field, A: la.v, B: lb.v})
		}
	}
	for k, lb := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, Change{Field: lb.field, B: lb.v})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Field != out[j].Field {
			return out[i].Field < out[j].Field
		}
		return fmt.Sprint(out[i].A, out[i].B) < fmt.Sprint(out[j].A, out[j].B)
	})
	return out
}

func snapshotJSON(k *core.SystemKernel) json.RawMessage {
	if k == nil {
		return nil
	}
	return k.CanonicalJSON()
}

type leaf struct {
	field string
	v     any
	set   bool // a member of a list compared as a set: present is equal
}

func decode(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	return v
}

func flatten(prefix string, v any, out map[string]leaf) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case nil:
		if prefix != "" {
			out[prefix] = leaf{field: prefix}
		}
	case map[string]any:
		for k, e := range x {
			flatten(join(k), e, out)
		}
	case []any:
		scalars := true
		for _, e := range x {
			switch e.(type) {
			case map[string]any, []any:
				scalars = false
			}
		}
		if !scalars {
			out[prefix] = leaf{field: prefix, v: x}
			return
		}
		for _, e := range x {
			out[prefix+"\x00"+string(mustJSON(e))] = leaf{field: prefix, v: e, set: true}
		}
	default:
		out[prefix] = leaf{field: prefix, v: x}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func cmpStr(out []Change, field, a, b string, info bool) []Change {
	if a == b {
		return out
	}
	return append(out, Change{Field: field, A: a, B: b, Info: info})
}

func cmpAny(out []Change, field string, a, b any, info bool) []Change {
	if string(mustJSON(a)) == string(mustJSON(b)) {
		return out
	}
	return append(out, Change{Field: field, A: a, B: b, Info: info})
}

// cmpMap compares two string maps key by key; a key only one side has is a
// Change with the other side nil.
func cmpMap(out []Change, prefix string, a, b map[string]string, info bool) []Change {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		va, oka := a[k]
		vb, okb := b[k]
		if oka && okb && va == vb {
			continue
		}
		c := Change{Field: k, Info: info}
		if prefix != "" {
			c.Field = prefix + "." + k
		}
		if oka {
			c.A = va
		}
		if okb {
			c.B = vb
		}
		out = append(out, c)
	}
	if out == nil {
		out = []Change{}
	}
	return out
}

// cmpMounts matches mounts by kind, name and target. The host source is
// informational: the same inputs may sit elsewhere, outputs go to a new
// directory per run.
func cmpMounts(ra, rb *core.Run) []Change {
	key := func(m core.RunMount) string { return m.Kind + " " + m.Name + " " + m.Target }
	label := func(m core.RunMount) string {
		if m.Name != "" {
			return m.Kind + " " + m.Name + " " + m.Target
		}
		return m.Kind + " " + m.Target
	}
	inB := map[string]core.RunMount{}
	for _, m := range rb.Mounts {
		inB[key(m)] = m
	}
	out := []Change{}
	seen := map[string]bool{}
	for _, ma := range ra.Mounts {
		k := key(ma)
		seen[k] = true
		mb, ok := inB[k]
		if !ok {
			out = append(out, Change{Field: label(ma), A: mountText(ma, ra.ID)})
			continue
		}
		if ma.ReadOnly != mb.ReadOnly || ma.Size != mb.Size {
			out = append(out, Change{Field: label(ma), A: mountText(ma, ra.ID), B: mountText(mb, rb.ID)})
		} else if normID(ma.Source, ra.ID) != normID(mb.Source, rb.ID) {
			out = append(out, Change{Field: label(ma) + " source", A: ma.Source, B: mb.Source, Info: true})
		}
	}
	for _, mb := range rb.Mounts {
		if !seen[key(mb)] {
			out = append(out, Change{Field: label(mb), B: mountText(mb, rb.ID)})
		}
	}
	return out
}

func mountText(m core.RunMount, id string) string {
	s := normID(m.Source, id)
	if s == "" {
		s = "tmpfs"
	}
	s += " -> " + m.Target
	if m.ReadOnly {
		s += " (ro)"
	} else {
		s += " (rw)"
	}
	if m.Size > 0 {
		s += fmt.Sprintf(" size=%d", m.Size)
	}
	return s
}

func normID(s, id string) string {
	if id == "" {
		return s
	}
	return strings.ReplaceAll(s, id, runToken)
}

func mapVals(m map[string]string, f func(string) string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = f(v)
	}
	return out
}

func sliceVals(s []string, f func(string) string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = f(v)
	}
	return out
}

// envMap turns KEY=VALUE lines into a map; the last of a repeated key wins,
// as for the process.
func envMap(env []string, f func(string) string) map[string]string {
	out := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = f(v)
	}
	return out
}

func shortHex(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
