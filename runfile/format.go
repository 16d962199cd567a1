package runfile

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Format writes the File as a canonical Runfile: one instruction per line,
// keywords in upper case, values quoted only where needed, commands in JSON
// form (shell-form commands stay shell form). Lines come in their original
// order; a Pending line is written as it was. For a File from Parse,
// Parse(Format(f)) gives the same File but for Line fields, Path and the
// Pending lines' numbers.
func (f *File) Format() string {
	esc := '\\'
	if f.Escape == "`" {
		esc = '`'
	}
	w := &formatter{f: f, q: func(s string) string { return quoteWord(s, esc) }, pending: map[int]bool{}}
	pendingWorkdir := false
	for _, p := range f.Pending {
		w.pending[p.Line] = true
		w.add(p.Line, "%s", p.Text)
		if kw := strings.Fields(p.Text); len(kw) > 0 && strings.EqualFold(kw[0], "WORKDIR") {
			pendingWorkdir = true
		}
	}
	w.image(pendingWorkdir)
	w.mounts()
	w.command()

	sort.SliceStable(w.out, func(i, j int) bool { return w.out[i].line < w.out[j].line })
	var b strings.Builder
	if f.Version > 0 {
		fmt.Fprintf(&b, "# runprov-format=%d\n", f.Version)
	}
	if esc == '`' {
		b.WriteString("# escape=`\n")
	}
	for _, e := range w.out {
		b.WriteString(wrap(e.text, esc))
		b.WriteByte('\n')
	}
	return b.String()
}

// formatter collects the lines of Format, each with the line number it
// keeps its place by.
type formatter struct {
	f       *File
	q       func(string) string // quotes a word where needed
	pending map[int]bool        // lines written as they were
	out     []formatted
}

type formatted struct {
	line int
	text string
}

func (w *formatter) add(line int, format string, a ...any) {
	w.out = append(w.out, formatted{line, fmt.Sprintf(format, a...)})
}

// image writes FROM, ARG, ENV, LABEL, WORKDIR and USER.
func (w *formatter) image(pendingWorkdir bool) {
	f, q := w.f, w.q
	if !w.pending[f.From.Line] && f.From.Ref != "" {
		if f.From.Platform != "" {
			w.add(f.From.Line, "FROM --platform=%s %s", q(f.From.Platform), q(f.From.Ref))
		} else {
			w.add(f.From.Line, "FROM %s", q(f.From.Ref))
		}
	}
	for _, a := range f.Args {
		switch {
		case w.pending[a.Line]:
		case a.HasDefault:
			w.add(a.Line, "ARG %s=%s", a.Name, q(a.Default))
		default:
			w.add(a.Line, "ARG %s", a.Name)
		}
	}
	for _, kv := range f.Env {
		if !w.pending[kv.Line] {
			w.add(kv.Line, "ENV %s=%s", kv.Key, q(kv.Value))
		}
	}
	for _, kv := range f.Labels {
		if !w.pending[kv.Line] {
			w.add(kv.Line, "LABEL %s=%s", q(kv.Key), q(kv.Value))
		}
	}
	// A literal WORKDIR refers to nothing, so any place after FROM will do.
	if f.Workdir != "" && !pendingWorkdir {
		w.add(f.From.Line, "WORKDIR %s", q(f.Workdir))
	}
	if !f.User.Default && !w.pending[f.User.Line] {
		w.add(f.User.Line, "USER %d:%d", f.User.UID, f.User.GID)
	}
}

// mounts writes INPUT, OUTPUT, SCRATCH and VOLUME.
func (w *formatter) mounts() {
	f, q := w.f, w.q
	for _, in := range f.Inputs {
		if !w.pending[in.Line] {
			w.add(in.Line, "INPUT %s %s", q(in.Name), q(in.Target))
		}
	}
	for _, o := range f.Outputs {
		switch {
		case w.pending[o.Line]:
		case o.Sensitivity == SensitivityModerate:
			w.add(o.Line, "OUTPUT %s sensitivity=%s", q(o.Target), o.Sensitivity)
		default:
			w.add(o.Line, "OUTPUT %s", q(o.Target))
		}
	}
	for _, s := range f.Scratch {
		switch {
		case w.pending[s.Line]:
		case s.SizeBytes > 0:
			w.add(s.Line, "SCRATCH %s %s", q(s.Target), formatSize(s.SizeBytes))
		default:
			w.add(s.Line, "SCRATCH %s", q(s.Target))
		}
	}
	for _, v := range f.Volumes {
		if !w.pending[v.Line] {
			w.add(v.Line, "VOLUME %s %s", q(v.Name), q(v.Target))
		}
	}
}

// command writes LIMIT, DEVICE, ENTRYPOINT, CMD and RUN.
func (w *formatter) command() {
	f := w.f
	// The merged limits go after every LIMIT line: a key in them was last
	// set by a literal value, which no pending line overrides.
	if l := f.Limits.format(); l != "" {
		w.add(f.Limits.Line, "LIMIT %s", l)
	}
	for _, d := range f.Devices {
		w.add(d.Line, "DEVICE %s", d.Name)
	}
	if c := f.Entrypoint; c != nil && !w.pending[c.Line] {
		w.add(c.Line, "ENTRYPOINT %s", c.format())
	}
	if c := f.Cmd; c != nil && !w.pending[c.Line] {
		w.add(c.Line, "CMD %s", c.format())
	}
	for _, s := range f.Steps {
		if !w.pending[s.Line] {
			w.add(s.Line, "RUN %s", s.format())
		}
	}
}

// wrap splits a line longer than half the line limit with continuation
// lines, so that a long RUN joined from many lines, or a long value, reads
// back. Continuations join text exactly; a split may not follow the escape
// token (no continuation then) nor start a line that reads as a comment or
// is blank (dropped). Without such a place the line stays long.
func wrap(text string, esc rune) string {
	const width = maxLineLen / 2
	if len(text) <= width {
		return text
	}
	var b strings.Builder
	for len(text) > width {
		i := split(text, esc, width, 1)
		if i < 0 {
			i = split(text, esc, maxLineLen-2, width+1)
		}
		if i < 0 {
			break
		}
		b.WriteString(text[:i])
		b.WriteRune(esc)
		b.WriteByte('\n')
		text = text[i:]
	}
	b.WriteString(text)
	return b.String()
}

// split finds the last place in text[lo:hi+1] where wrap may break it.
func split(text string, esc rune, hi, lo int) int {
	hi = min(hi, len(text)-1)
	// nonSpace is the first non-space at or after i: what the next line
	// would start with once leading space is ignored.
	nonSpace := -1
	for j, r := range text[hi:] {
		if !unicode.IsSpace(r) {
			nonSpace = hi + j
			break
		}
	}
	for i := hi; i >= lo; i-- {
		if !utf8.RuneStart(text[i]) {
			continue
		}
		if r, _ := utf8.DecodeRuneInString(text[i:]); !unicode.IsSpace(r) {
			nonSpace = i
		}
		if rune(text[i-1]) == esc || nonSpace < 0 || text[nonSpace] == '#' {
			continue
		}
		return i
	}
	return -1
}

func (l Limits) format() string {
	var parts []string
	if l.CPUs > 0 {
		parts = append(parts, "cpus="+strconv.FormatFloat(l.CPUs, 'f', -1, 64))
	}
	if l.MemoryBytes > 0 {
		parts = append(parts, "memory="+formatSize(l.MemoryBytes))
	}
	if l.Pids > 0 {
		parts = append(parts, "pids="+strconv.FormatInt(l.Pids, 10))
	}
	if l.Timeout > 0 {
		parts = append(parts, "timeout="+formatDuration(l.Timeout))
	}
	return strings.Join(parts, " ")
}

// formatDuration drops zero minutes and seconds: 2h, not 2h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// format writes the shell form as it was, else the JSON form.
func (c *Command) format() string {
	if c.Shell && len(c.Args) == 3 && c.Args[0] == "/bin/sh" && c.Args[1] == "-c" && shellText(c.Args[2]) {
		return c.Args[2]
	}
	parts := make([]string, len(c.Args))
	for i, a := range c.Args {
		parts[i] = jsonString(a)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// shellText tells whether s reads back as the same shell-form text: text
// that is a JSON array or starts like a flag would read as something else.
func shellText(s string) bool {
	var array []any
	return s != "" && s == strings.TrimSpace(s) && !strings.HasPrefix(s, "--") &&
		!strings.ContainsAny(s, "\n\r") && json.Unmarshal([]byte(s), &array) != nil
}

func jsonString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// quoteWord writes s as a word that the Runfile lexer reads back as s, with
// no variable references: as is when it is plain, else in double quotes with
// ", $ and the escape token escaped.
func quoteWord(s string, esc rune) string {
	if plain(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '$' || r == esc {
			b.WriteRune(esc)
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

func plain(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("/._:@+,=%-", c) >= 0:
		default:
			return false
		}
	}
	return true
}
