package runfile

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/runprov/runprov/core"
)

// kinds are the Runfile instructions (DEVICE from format 2).
var kinds = []string{"FROM", "ARG", "ENV", "LABEL", "WORKDIR", "USER", "INPUT", "OUTPUT", "SCRATCH", "VOLUME", "NETWORK", "LIMIT", "DEVICE", "ENTRYPOINT", "CMD", "RUN"}

const runNotBuild = " is a build instruction: a Runfile describes a run, not a build"

// buildOnly are the Dockerfile instructions a Runfile refuses, and why.
var buildOnly = map[string]string{
	"COPY":        "COPY" + runNotBuild + "; put files in the image when you build it, or declare data with INPUT",
	"ADD":         "ADD" + runNotBuild + "; put files in the image when you build it, or declare data with INPUT",
	"ONBUILD":     "ONBUILD" + runNotBuild,
	"HEALTHCHECK": "HEALTHCHECK" + runNotBuild + "; a run ends when its command exits (bound it with LIMIT timeout=DURATION)",
	"EXPOSE":      "EXPOSE is refused: runs have no network, and a Runfile describes a run, not a build",
	"STOPSIGNAL":  "STOPSIGNAL" + runNotBuild + "; bound a run with LIMIT timeout=DURATION",
	"SHELL":       "SHELL" + runNotBuild + "; pick a shell with the JSON form, like RUN [\"/bin/bash\", \"-c\", \"...\"]",
	"MAINTAINER":  "MAINTAINER" + runNotBuild + "; use LABEL maintainer=NAME",
}

// builder turns instructions into a File: it expands words, validates values
// and collects every problem. Parse and Resolve both use it.
type builder struct {
	f       *File
	errs    *errList
	lex     *shell.Lex
	escape  rune
	version int // the declared format version, 0: none
	vars    *vars
	values  map[string]string // Resolve's --arg values
	resolve bool

	ins        *instruction
	insWaits   []string        // ARGs the current instruction waits for
	undefined  map[string]bool // names reported undefined on the current line
	overflowed bool

	fromLine        int
	firstOther      int // the first instruction before FROM that is not ARG
	firstOtherKind  string
	once            map[string]int // single instructions → their line
	argLines        map[string]int
	inputs, volumes map[string]int
	devices         map[string]int // DEVICE names → their line
	mounts          []mount
	deferred        map[string]bool // Parse: ARGs some pending line waits for
	missing         map[string]bool // Resolve: ARGs reported without a value
}

type mount struct {
	what, target string
	line         int
}

// build runs the instructions. values is nil for Parse; for Resolve it holds
// the run-time ARG values, and a word that still waits for an ARG is an error.
func build(path string, instrs []instruction, escape rune, version int, values map[string]string, errs *errList) *File {
	b := &builder{
		f:        &File{Path: path, Network: DefaultNetwork, Version: version, instrs: instrs},
		errs:     errs,
		lex:      shell.NewLex(escape),
		escape:   escape,
		version:  version,
		devices:  map[string]int{},
		vars:     newVars(),
		values:   values,
		resolve:  values != nil,
		once:     map[string]int{},
		argLines: map[string]int{},
		inputs:   map[string]int{},
		volumes:  map[string]int{},
		deferred: map[string]bool{},
		missing:  map[string]bool{},
	}
	if escape == '`' {
		b.f.Escape = "`"
	}
	for i := range instrs {
		b.ins = &instrs[i]
		b.insWaits = nil
		b.undefined = map[string]bool{}
		b.instruction()
		if len(b.insWaits) > 0 {
			b.pend()
		}
	}
	b.finish()
	return b.f
}

func (b *builder) errorf(format string, a ...any) {
	b.errs.add(b.ins.line, format, a...)
}

// pend records that the current line waits for ARGs without a value: Parse
// keeps its text, Resolve reports the missing values.
func (b *builder) pend() {
	if !b.resolve {
		b.f.Pending = append(b.f.Pending, RawLine{Line: b.ins.line, Text: b.ins.text})
		for _, n := range b.insWaits {
			b.deferred[n] = true
		}
		return
	}
	for _, n := range b.insWaits {
		if !b.missing[n] {
			b.missing[n] = true
			b.errs.add(b.argLines[n], "ARG %s has no default; pass --arg %s=VALUE", n, n)
		}
	}
}

func (b *builder) finish() {
	f := b.f
	if b.fromLine == 0 {
		b.errs.add(0, "no FROM line; a Runfile starts with FROM NAME[:TAG]@sha256:DIGEST")
	} else if b.firstOther != 0 {
		b.errs.add(b.firstOther, "%s comes before FROM; a Runfile starts with FROM (only ARG lines may come before it)", b.firstOtherKind)
	}
	if _, ok := b.once["USER"]; !ok {
		f.User = User{UID: DefaultUID, GID: DefaultGID, Default: true}
	}
	for _, a := range f.Args {
		if b.deferred[a.Name] {
			f.Deferred = append(f.Deferred, a.Name)
		}
	}
}

// word expands one word. It returns the value, or the word as written when
// it waits for an ARG without a value (then waits is true and the caller
// must not check the value); ok is false when an error was reported.
func (b *builder) word(what, raw string) (v string, waits, ok bool) {
	v, deferred, ok := b.expand(what, raw)
	if !ok {
		return "", false, false
	}
	if len(deferred) > 0 {
		b.insWaits = union(b.insWaits, deferred)
		return v, true, true
	}
	return v, false, true
}

func (b *builder) instruction() {
	ins := b.ins
	if why, ok := buildOnly[ins.kind]; ok {
		b.errorf("%s", why)
		return
	}
	if !isKind(ins.kind) {
		if s := suggest(ins.keyword, kinds); s != "" {
			b.errorf("unknown instruction %s; did you mean %s?", show(ins.keyword), s)
		} else {
			b.errorf("unknown instruction %s; the Runfile instructions are %s and RUN", show(ins.keyword), strings.Join(kinds[:len(kinds)-1], ", "))
		}
		return
	}
	if b.fromLine == 0 && ins.kind != "FROM" && ins.kind != "ARG" && b.firstOther == 0 {
		b.firstOther, b.firstOtherKind = ins.line, ins.kind
	}
	if ins.heredoc {
		b.errorf("%s", heredocMessage)
		return
	}
	if ins.flags && ins.kind != "FROM" {
		b.refuseFlags()
		return
	}
	switch ins.kind {
	case "FROM":
		b.from()
	case "ARG":
		b.arg()
	case "ENV":
		b.env()
	case "LABEL":
		b.label()
	case "WORKDIR":
		b.workdir()
	case "USER":
		b.user()
	case "INPUT":
		b.input()
	case "OUTPUT":
		b.output()
	case "SCRATCH":
		b.scratch()
	case "VOLUME":
		b.volume()
	case "NETWORK":
		b.network()
	case "LIMIT":
		b.limit()
	case "DEVICE":
		b.device()
	case "ENTRYPOINT", "CMD":
		b.single()
	case "RUN":
		if c := b.command(); c != nil {
			b.f.Steps = append(b.f.Steps, Step{Command: *c})
		}
	}
}

func isKind(k string) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

func (b *builder) refuseFlags() {
	ins := b.ins
	var flags []string
	for _, w := range splitWords(ins.rest, b.escape) {
		if !strings.HasPrefix(w, "--") {
			break
		}
		flags = append(flags, w)
	}
	what := strings.Join(flags, " ")
	switch ins.kind {
	case "RUN":
		b.errorf("RUN %s: RUN takes no flags in a Runfile; steps run in the sandbox with only the declared INPUT, OUTPUT, SCRATCH and VOLUME mounts", show(what))
	case "CMD", "ENTRYPOINT":
		b.errorf("%s %s: %s takes no flags; to pass %s to the program, use the JSON form, like %s [\"prog\", %s]", ins.kind, show(what), ins.kind, show(what), ins.kind, jsonString(flags[0]))
	default:
		b.errorf("%s %s: %s takes no flags; only FROM takes one, --platform", ins.kind, show(what), ins.kind)
	}
}

// onlyOnce reports a repeated single instruction and returns true for it.
func (b *builder) onlyOnce() bool {
	ins := b.ins
	if l, ok := b.once[ins.kind]; ok {
		b.errorf("%s is given twice (first on line %d); give it once", ins.kind, l)
		return true
	}
	b.once[ins.kind] = ins.line
	return false
}

func (b *builder) from() {
	ins := b.ins
	if b.fromLine != 0 {
		b.errorf("a second FROM (the first is on line %d); a Runfile runs one image and has no build stages", b.fromLine)
		return
	}
	b.fromLine = ins.line
	words := splitWords(ins.rest, b.escape)
	ok := true
	var platform string
	platformWaits, seenPlatform := false, false
	i := 0
	for ; i < len(words) && strings.HasPrefix(words[i], "--"); i++ {
		name, val, hasVal := strings.Cut(words[i][2:], "=")
		switch {
		case name != "platform":
			b.errorf("FROM --%s is not supported; FROM takes only --platform=OS/ARCH[/VARIANT]", show(name))
			ok = false
		case seenPlatform:
			b.errorf("FROM --platform is given twice; give it once")
			ok = false
		case !hasVal || val == "":
			b.errorf("FROM --platform needs a value, like --platform=linux/amd64")
			ok = false
		default:
			seenPlatform = true
			var pok bool
			platform, platformWaits, pok = b.word("FROM --platform", val)
			if pok && !platformWaits {
				if msg := checkPlatform(platform); msg != "" {
					b.errorf("%s", msg)
					pok = false
				}
			}
			ok = ok && pok
		}
	}
	args := words[i:]
	switch {
	case len(args) == 0:
		b.errorf("FROM needs an image: FROM NAME[:TAG]@sha256:DIGEST")
		return
	case len(args) == 3 && strings.EqualFold(args[1], "AS"):
		b.errorf("FROM ... AS %s: a Runfile has no build stages; remove AS %s", show(args[2]), show(args[2]))
		return
	case len(args) > 1:
		b.errorf("FROM takes one image, NAME[:TAG]@sha256:DIGEST; it has %s", count(len(args), "word"))
		return
	}
	ref, waits, rok := b.word("FROM", args[0])
	if !ok || !rok {
		return
	}
	img := Image{Ref: ref}
	if !waits {
		var msg string
		if img, msg = parseImage(ref); msg != "" {
			b.errorf("%s", msg)
			return
		}
	}
	img.Platform, img.Line = platform, ins.line
	b.f.From = img
}

func (b *builder) arg() {
	ins := b.ins
	words := splitWords(ins.rest, b.escape)
	if len(words) == 0 {
		b.errorf("ARG needs a name: ARG NAME[=DEFAULT]")
		return
	}
	// Left to right, as buildkit does: a default may use an ARG declared
	// before it on the same line.
	for _, w := range words {
		name, raw, hasDefault := strings.Cut(w, "=")
		if !isName(name) {
			b.errorf("ARG name %s is not valid; use letters, digits and '_', not starting with a digit", show(name))
			continue
		}
		if l, dup := b.argLines[name]; dup {
			b.errorf("ARG %s is already declared on line %d; declare each ARG once", name, l)
			continue
		}
		b.argLines[name] = ins.line
		a := Arg{Name: name, HasDefault: hasDefault, Line: ins.line}
		var v variable
		waits, ok := false, true
		if hasDefault {
			before := b.insWaits
			b.insWaits = nil
			a.Default, waits, ok = b.word("ARG "+name, raw)
			v.deferred = b.insWaits
			b.insWaits = union(before, b.insWaits)
		}
		given, isGiven := b.values[name]
		switch {
		case isGiven:
			v = variable{value: given}
			a.Value = given
		case !ok:
			v.bad = true
		case hasDefault && !waits:
			v.value, a.Value = a.Default, a.Default
		case !hasDefault:
			v.deferred = []string{name}
		}
		b.vars.args[name] = v
		if ok {
			b.f.Args = append(b.f.Args, a)
		}
	}
}

// pairs reads ENV and LABEL arguments: buildkit gives (key, value, "=" or "")
// triples, "" for the legacy form "ENV KEY VALUE".
func (b *builder) pairs() [][2]string {
	ins := b.ins
	if len(ins.args) == 0 || len(ins.args)%3 != 0 {
		b.errorf("%s needs KEY=VALUE pairs", ins.kind)
		return nil
	}
	var out [][2]string
	for i := 0; i+1 < len(ins.args); i += 3 {
		out = append(out, [2]string{ins.args[i], ins.args[i+1]})
	}
	return out
}

func (b *builder) env() {
	type set struct {
		kv KeyValue
		v  variable
	}
	var sets []set
	// All values on one line see the environment before it, as in Dockerfiles.
	for _, p := range b.pairs() {
		key, raw := p[0], p[1]
		if !isName(key) {
			b.errorf("ENV key %s is not valid; use letters, digits and '_', not starting with a digit", show(key))
			continue
		}
		before := b.insWaits
		b.insWaits = nil
		val, _, ok := b.word("ENV "+key, raw)
		v := variable{value: val, deferred: b.insWaits, bad: !ok}
		b.insWaits = union(before, b.insWaits)
		sets = append(sets, set{KeyValue{Key: key, Value: val, Line: b.ins.line}, v})
	}
	for _, s := range sets {
		b.vars.env[s.kv.Key] = s.v
		if !s.v.bad {
			b.f.Env = append(b.f.Env, s.kv)
		}
	}
}

func (b *builder) label() {
	for _, p := range b.pairs() {
		rawKey, raw := p[0], p[1]
		if strings.ContainsRune(rawKey, '$') {
			b.errorf("LABEL key %s cannot use variables; write the key as is", show(rawKey))
			continue
		}
		key, _, ok := b.word("LABEL key", rawKey)
		if !ok {
			continue
		}
		if !reLabelKey().MatchString(key) {
			b.errorf("LABEL key %s is not valid; use letters, digits, '.', '_', '-' and '/', starting with a letter or digit", show(key))
			continue
		}
		if val, _, ok := b.word("LABEL "+key, raw); ok {
			b.f.Labels = append(b.f.Labels, KeyValue{Key: key, Value: val, Line: b.ins.line})
		}
	}
}

func (b *builder) workdir() {
	if b.onlyOnce() {
		return
	}
	if b.ins.rest == "" {
		b.errorf("WORKDIR needs an absolute path, like /work")
		return
	}
	v, waits, ok := b.word("WORKDIR", b.ins.rest)
	if !ok {
		return
	}
	if !waits {
		var msg string
		if v, msg = cleanPath("WORKDIR", v); msg != "" {
			b.errorf("%s", msg)
			return
		}
	}
	b.f.Workdir = v
}

func (b *builder) user() {
	if b.onlyOnce() {
		return
	}
	if b.ins.rest == "" {
		b.errorf("USER needs numeric ids, UID[:GID], like USER 1000:1000")
		return
	}
	v, waits, ok := b.word("USER", b.ins.rest)
	if !ok {
		return
	}
	// Until Resolve, nobody: a caller that forgets to resolve must not get root.
	u := User{UID: DefaultUID, GID: DefaultGID, Line: b.ins.line}
	if !waits {
		var msg string
		if u.UID, u.GID, msg = parseUser(v); msg != "" {
			b.errorf("%s", msg)
			return
		}
	}
	b.f.User = u
}

// target expands and checks a mount target; ok is false after an error.
func (b *builder) target(what, raw string) (string, bool) {
	v, waits, ok := b.word(what+" target", raw)
	if !ok || waits {
		return v, ok
	}
	t, msg := mountTarget(what+" target", v)
	if msg != "" {
		b.errorf("%s", msg)
		return "", false
	}
	return t, b.addMount(what, t)
}

// addMount refuses a target used twice or nested in another: a mount would
// hide what is under it.
func (b *builder) addMount(what, target string) bool {
	line := b.ins.line
	for _, m := range b.mounts {
		switch {
		case m.target == target:
			b.errorf("mount target %s is used twice: %s on line %d and %s on line %d; each mount needs its own target", show(target), m.what, m.line, what, line)
		case strings.HasPrefix(target, m.target+"/"):
			b.errorf("mount targets may not nest: %s %s (line %d) is inside %s %s (line %d)", what, show(target), line, m.what, show(m.target), m.line)
		case strings.HasPrefix(m.target, target+"/"):
			b.errorf("mount targets may not nest: %s %s (line %d) contains %s %s (line %d)", what, show(target), line, m.what, show(m.target), m.line)
		default:
			continue
		}
		return false
	}
	b.mounts = append(b.mounts, mount{what: what, target: target, line: line})
	return true
}

// name expands and checks an INPUT or VOLUME name, unique among its kind.
func (b *builder) name(what, raw string, seen map[string]int) (string, bool) {
	v, waits, ok := b.word(what+" name", raw)
	if !ok || waits {
		return v, ok
	}
	if msg := checkMountName(what, v); msg != "" {
		b.errorf("%s", msg)
		return "", false
	}
	if l, dup := seen[v]; dup {
		b.errorf("%s %s is already declared on line %d; %s names must be unique", what, v, l, what)
		return "", false
	}
	seen[v] = b.ins.line
	return v, true
}

func (b *builder) input() {
	words := splitWords(b.ins.rest, b.escape)
	if len(words) != 2 {
		b.errorf("INPUT takes NAME /abs/container/path, like INPUT data /data; it has %s", count(len(words), "word"))
		return
	}
	name, nok := b.name("INPUT", words[0], b.inputs)
	what := "INPUT"
	if nok {
		what = "INPUT " + name
	}
	target, tok := b.target(what, words[1])
	if nok && tok {
		b.f.Inputs = append(b.f.Inputs, Input{Name: name, Target: target, Line: b.ins.line})
	}
}

func (b *builder) output() {
	words := splitWords(b.ins.rest, b.escape)
	if len(words) != 1 && len(words) != 2 {
		b.errorf("OUTPUT takes one absolute path and an optional sensitivity, like OUTPUT /outputs sensitivity=moderate; it has %s", count(len(words), "word"))
		return
	}
	t, ok := b.target("OUTPUT", words[0])
	sens := SensitivityHigh
	if len(words) == 2 {
		v, found := strings.CutPrefix(words[1], "sensitivity=")
		switch {
		case !found:
			b.errorf("OUTPUT %s: %s is not an option; OUTPUT takes sensitivity=high or sensitivity=moderate", show(words[0]), show(words[1]))
			ok = false
		case v == SensitivityHigh || v == SensitivityModerate:
			sens = v
		default:
			b.errorf("OUTPUT %s: sensitivity %s: want high (never leaves) or moderate (may be requested for release)", show(words[0]), show(v))
			ok = false
		}
	}
	if ok {
		b.f.Outputs = append(b.f.Outputs, Output{Target: t, Sensitivity: sens, Line: b.ins.line})
	}
}

func (b *builder) scratch() {
	words := splitWords(b.ins.rest, b.escape)
	if len(words) != 1 && len(words) != 2 {
		b.errorf("SCRATCH takes an absolute path and an optional size, like SCRATCH /scratch 2G; it has %s", count(len(words), "word"))
		return
	}
	t, ok := b.target("SCRATCH", words[0])
	s := Scratch{Target: t, Line: b.ins.line}
	if len(words) == 2 {
		v, waits, sok := b.word("SCRATCH size", words[1])
		if sok && !waits {
			n, err := parseSize(v)
			if err != nil {
				b.errorf("SCRATCH size: %v", err)
				sok = false
			}
			s.SizeBytes = n
		}
		ok = ok && sok
	}
	if ok {
		b.f.Scratch = append(b.f.Scratch, s)
	}
}

func (b *builder) volume() {
	ins := b.ins
	if ins.json || strings.HasPrefix(ins.rest, "[") {
		b.errorf("VOLUME takes NAME /abs/container/path in a Runfile, not the Dockerfile JSON form; like VOLUME cache /cache")
		return
	}
	words := splitWords(ins.rest, b.escape)
	switch len(words) {
	case 2:
	case 1:
		b.errorf("VOLUME %s: a Runfile has no anonymous volumes; write VOLUME NAME %s for a named volume kept across runs, or SCRATCH %s for temporary space", show(words[0]), show(words[0]), show(words[0]))
		return
	default:
		b.errorf("VOLUME takes NAME /abs/container/path, like VOLUME cache /cache; it has %s", count(len(words), "word"))
		return
	}
	name, nok := b.name("VOLUME", words[0], b.volumes)
	what := "VOLUME"
	if nok {
		what = "VOLUME " + name
	}
	target, tok := b.target(what, words[1])
	if nok && tok {
		b.f.Volumes = append(b.f.Volumes, Volume{Name: name, Target: target, Line: ins.line})
	}
}

func (b *builder) network() {
	if b.onlyOnce() {
		return
	}
	// Not expanded: there is one value, and it is no parameter.
	words := splitWords(b.ins.rest, b.escape)
	switch {
	case len(words) == 0:
		b.errorf("NETWORK needs a value; v1 runs have no network and the only value is none")
	case len(words) > 1 || words[0] != "none":
		b.errorf("NETWORK %s: v1 runs have no network; the only value is none", show(b.ins.rest))
	}
}

var (
	reCPUs = core.LazyRegexp(`^([0-9]+(\.[0-9]+)?|\.[0-9]+)$`)
	reInt  = core.LazyRegexp(`^[0-9]+$`)
)

var limitKeys = []string{"cpus", "memory", "pids", "timeout"}

func (b *builder) limit() {
	words := splitWords(b.ins.rest, b.escape)
	if len(words) == 0 {
		b.errorf("LIMIT needs key=value pairs: cpus=N memory=SIZE pids=N timeout=DURATION")
		return
	}
	l := &b.f.Limits
	l.Line = b.ins.line
	for _, w := range words {
		key, raw, hasEq := strings.Cut(w, "=")
		if !hasEq {
			b.errorf("LIMIT %s: write key=value, like cpus=2 or memory=4G", show(w))
			continue
		}
		switch key {
		case "cpus", "memory", "pids", "timeout":
		default:
			if s := suggest(key, limitKeys); s != "" {
				b.errorf("LIMIT %s: unknown limit %s; did you mean %s?", show(w), show(key), s)
			} else {
				b.errorf("LIMIT %s: unknown limit %s; the limits are cpus, memory, pids and timeout", show(w), show(key))
			}
			continue
		}
		v, waits, ok := b.word("LIMIT "+key, raw)
		if !ok {
			continue
		}
		// Later wins per key; a value that waits for Resolve clears what
		// came before, so that Format keeps the order right.
		switch key {
		case "cpus":
			l.CPUs = 0
			if waits {
				continue
			}
			n, err := strconv.ParseFloat(v, 64)
			if !reCPUs().MatchString(v) || err != nil || n <= 0 || math.IsInf(n, 0) {
				b.errorf("LIMIT cpus=%s: cpus must be a number above 0, like 0.5 or 2", show(v))
				continue
			}
			l.CPUs = n
		case "memory":
			l.MemoryBytes = 0
			if waits {
				continue
			}
			n, err := parseSize(v)
			if err != nil {
				b.errorf("LIMIT memory: %v", err)
				continue
			}
			l.MemoryBytes = n
		case "pids":
			l.Pids = 0
			if waits {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if !reInt().MatchString(v) || err != nil || n <= 0 {
				b.errorf("LIMIT pids=%s: pids must be a whole number above 0, like 256", show(v))
				continue
			}
			l.Pids = n
		case "timeout":
			l.Timeout = 0
			if waits {
				continue
			}
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				b.errorf("LIMIT timeout=%s: timeout must be a duration above 0 with a unit, like 90s, 30m or 2h", show(v))
				continue
			}
			l.Timeout = d
		}
	}
}

// single handles ENTRYPOINT and CMD. Dockerfiles let the last one win; a
// Runfile refuses a second, since a silent override hides what ran.
func (b *builder) single() {
	ins := b.ins
	if l, ok := b.once[ins.kind]; ok {
		b.errorf("a second %s (the first is on line %d); a Runfile has at most one, so nothing is overridden silently", ins.kind, l)
		return
	}
	b.once[ins.kind] = ins.line
	c := b.command()
	if c == nil {
		return
	}
	if ins.kind == "CMD" {
		b.f.Cmd = c
	} else {
		b.f.Entrypoint = c
	}
}

// command reads the exec (JSON) or shell form. Words are not expanded: their
// $VARs are for the container's shell, as in Dockerfiles.
func (b *builder) command() *Command {
	ins := b.ins
	c := &Command{Line: ins.line}
	if ins.json {
		if len(ins.args) == 0 && ins.kind == "RUN" {
			b.errorf("RUN needs a command, like RUN [\"prog\", \"arg\"]")
			return nil
		}
		for _, a := range ins.args {
			if strings.ContainsRune(a, 0) {
				b.errorf("%s: an argument has a NUL character, which no program can receive", ins.kind)
				return nil
			}
		}
		c.Args = append([]string{}, ins.args...)
		return c
	}
	if len(ins.args) == 0 || ins.args[0] == "" {
		b.errorf("%s needs a command: %s [\"prog\", \"arg\"] or %s prog arg", ins.kind, ins.kind, ins.kind)
		return nil
	}
	c.Args = []string{"/bin/sh", "-c", ins.args[0]}
	c.Shell = true
	return c
}

// count writes "1 word", "2 words".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
