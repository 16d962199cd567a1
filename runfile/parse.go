package runfile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Input limits. They keep a hostile or broken file from costing more than a
// few megabytes and a few milliseconds.
const (
	maxFileSize = 1 << 20  // bytes in a Runfile
	maxLineLen  = 32 << 10 // bytes in one physical line
	maxErrors   = 20       // errors reported by one Parse or Resolve
)

var bom = []byte{0xEF, 0xBB, 0xBF}

// instruction is one instruction as buildkit's parser split it, kept on the
// File so Resolve can expand and validate it again with run-time values.
type instruction struct {
	kind    string   // the keyword in upper case, e.g. "INPUT"
	keyword string   // the keyword as written
	line    int      // the line it starts on
	text    string   // the instruction as written, continuation lines joined
	rest    string   // text after the keyword, flags included
	args    []string // buildkit's argument nodes: ENV/LABEL triples, JSON strings, shell text
	json    bool     // exec (JSON array) form
	flags   bool     // buildkit found --flags
	heredoc bool     // buildkit found a heredoc (<<EOF)
}

// Parse reads a Runfile. path is used in error messages only.
//
// The error is a *core.PosError, or several joined with errors.Join in line
// order; all match errors.Is(err, core.ErrInvalid).
func Parse(path string, data []byte) (*File, error) {
	errs := &errList{path: path}
	if len(data) > maxFileSize {
		errs.add(0, "the file is %d bytes; a Runfile may be at most 1 MiB (%d bytes)", len(data), maxFileSize)
		return nil, errs.err()
	}
	data = bytes.TrimPrefix(data, bom)
	if line, msg := checkText(data); msg != "" {
		errs.add(line, "%s", msg)
		return nil, errs.err()
	}
	escape, version, data := directives(errs, data)
	instrs := lex(errs, data, escape)
	if len(instrs) == 0 {
		if errs.len() == 0 {
			errs.add(0, "the file has no instructions; a Runfile starts with FROM NAME[:TAG]@sha256:DIGEST")
		}
		return nil, errs.err()
	}
	f := build(path, instrs, escape, version, nil, errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// checkText refuses what is not a text file before the line parser sees it:
// binary data, control characters and lines too long to scan.
func checkText(data []byte) (int, string) {
	line := 0
	for len(data) > 0 {
		line++
		l, rest, _ := bytes.Cut(data, []byte("\n"))
		data = rest
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) > maxLineLen {
			return line, fmt.Sprintf("the line is %d bytes long; a line may be at most %d bytes (split it with continuation lines)", len(l), maxLineLen)
		}
		if bytes.IndexByte(l, 0) >= 0 {
			return line, "the line has a NUL byte; a Runfile is a text file, not binary data"
		}
		if !utf8.Valid(l) {
			return line, "the line is not valid UTF-8; a Runfile is UTF-8 text"
		}
		for _, r := range string(l) {
			if r != '\t' && unicode.IsControl(r) {
				return line, fmt.Sprintf("the line has the control character %U; a Runfile is plain text", r)
			}
		}
	}
	return 0, ""
}

// directives reads the parser directives at the top of the file ("# escape=`")
// with buildkit's own directive parser, and runprov's "# runprov-format=N",
// refuses all others, and returns the escape token, the declared format
// version (0: none) and the data with the directive lines rewritten so that
// buildkit sees exactly the escape token chosen here.
func directives(errs *errList, data []byte) (rune, int, []byte) {
	lines := bytes.SplitAfter(data, []byte("\n"))
	var dp parser.DirectiveParser
	escape := parser.DefaultEscapeToken
	version, versionLine := 0, 0
	var found []int
	for i, l := range lines {
		t := bytes.TrimLeftFunc(bytes.TrimRight(l, "\r\n"), unicode.IsSpace)
		if v, ok := formatDirective(t); ok {
			found = append(found, i)
			n, msg := formatVersion(v)
			switch {
			case versionLine != 0:
				errs.add(i+1, "only one runprov-format directive is allowed (first on line %d); remove this line", versionLine)
			case msg != "":
				errs.add(i+1, "%s", msg)
			default:
				version, versionLine = n, i+1
			}
			continue
		}
		d, err := dp.ParseLine(t)
		if err != nil {
			found = append(found, i)
			errs.add(i+1, "only one %s directive is allowed; remove this line", directiveName(t))
			continue
		}
		if d == nil {
			break
		}
		found = append(found, i)
		switch d.Name {
		case "escape":
			switch d.Value {
			case "`", `\`:
				escape = rune(d.Value[0])
			default:
				errs.add(i+1, "the escape directive must be \\ or `, not %s", show(d.Value))
			}
		case "syntax":
			errs.add(i+1, "the syntax directive is for Dockerfile frontends; a Runfile is always read by runprov: remove this line")
		default:
			errs.add(i+1, "the %s directive is not supported in a Runfile; only # escape= is: remove this line", d.Name)
		}
	}
	if len(found) == 0 {
		return escape, version, data
	}
	// Keep line numbers: the first directive line becomes the escape
	// directive, the others plain comments.
	out := make([][]byte, len(lines))
	copy(out, lines)
	for n, i := range found {
		text := "#"
		if n == 0 {
			text = "# escape=" + string(escape)
		}
		out[i] = append([]byte(text), newline(lines[i])...)
	}
	return escape, version, bytes.Join(out, nil)
}

func directiveName(line []byte) string {
	name, _, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(string(line), "#")), "=")
	return strings.ToLower(strings.TrimSpace(name))
}

func newline(l []byte) []byte {
	if bytes.HasSuffix(l, []byte("\r\n")) {
		return []byte("\r\n")
	}
	if bytes.HasSuffix(l, []byte("\n")) {
		return []byte("\n")
	}
	return nil
}

// lex runs buildkit's parser. buildkit stops at the first malformed
// instruction; to report every problem, lex blanks the lines of the one it
// refused and parses again, at most maxErrors times.
func lex(errs *errList, data []byte, escape rune) []instruction {
	lines := bytes.SplitAfter(data, []byte("\n"))
	for attempt := 0; ; attempt++ {
		res, err := parser.Parse(bytes.NewReader(bytes.Join(lines, nil)))
		if err == nil {
			return instructions(res.AST)
		}
		if strings.Contains(innermost(err).Error(), "no instructions") {
			return nil // empty; Parse says so unless lines were refused
		}
		var le *parser.LocationError
		if !errors.As(err, &le) || len(le.Locations) == 0 || len(le.Locations[0]) == 0 {
			errs.add(0, "%s", lowerFirst(innermost(err).Error()))
			return nil
		}
		loc := le.Locations[0]
		start, end := loc[0].Start.Line, loc[len(loc)-1].End.Line
		if start < 1 || start > len(lines) || attempt >= maxErrors {
			errs.add(start, "%s", lowerFirst(innermost(err).Error()))
			return nil
		}
		errs.add(start, "%s", lexMessage(string(lines[start-1]), escape, err))
		for i := start - 1; i < end && i < len(lines); i++ {
			lines[i] = newline(lines[i])
		}
	}
}

// lexMessage turns an error of buildkit's parser into one that says what to do.
func lexMessage(line string, escape rune, err error) string {
	msg := innermost(err).Error()
	fields := strings.Fields(line)
	kw := ""
	if len(fields) > 0 {
		kw = strings.ToUpper(fields[0])
	}
	switch {
	case strings.Contains(msg, "heredoc"):
		return heredocMessage
	case strings.Contains(msg, "strings only"):
		return fmt.Sprintf("%s: a JSON array must hold only strings, e.g. [\"prog\", \"arg\"]", show(kw))
	case kw == "ENV" || kw == "LABEL":
		rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), fields[0]))
		for _, w := range splitWords(rest, escape) {
			if !strings.Contains(w, "=") {
				return fmt.Sprintf("%s: %s has no \"=\"; write KEY=VALUE pairs (quote values that have spaces)", kw, show(w))
			}
		}
		return fmt.Sprintf("%s needs KEY=VALUE pairs", kw)
	}
	return fmt.Sprintf("%s: %s", show(kw), lowerFirst(msg))
}

const heredocMessage = "heredocs (<<EOF) are not supported in a Runfile; put the script in the image, or use RUN with && between commands"

func instructions(root *parser.Node) []instruction {
	var out []instruction
	for _, n := range root.Children {
		text := strings.TrimSpace(n.Original)
		ins := instruction{
			kind:    strings.ToUpper(n.Value),
			keyword: n.Value,
			line:    n.StartLine,
			text:    text,
			rest:    strings.TrimSpace(strings.TrimPrefix(text, n.Value)),
			json:    n.Attributes["json"],
			flags:   len(n.Flags) > 0,
			heredoc: len(n.Heredocs) > 0,
		}
		for a := n.Next; a != nil; a = a.Next {
			ins.args = append(ins.args, a.Value)
		}
		out = append(out, ins)
	}
	return out
}

// innermost returns the error that others wrap: buildkit wraps its messages
// with stack traces and "failed to process" prefixes.
func innermost(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || (len(s) > n && unicode.IsUpper(rune(s[n]))) {
		return s // empty, or an acronym
	}
	return string(unicode.ToLower(r)) + s[n:]
}
