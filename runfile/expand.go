package runfile

import (
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/runprov/runprov/core"
)

// Expansion limits: a few lines of ${A}${A}... must not be able to build
// gigabytes of text.
const (
	maxWordLen   = 64 << 10 // bytes in one expanded word
	maxExpansion = 8 << 20  // bytes of variable values substituted into one file
	maxNesting   = 32       // ${...${...}...} depth
)

// variable is an ARG or ENV value in the expansion environment.
type variable struct {
	value string
	// deferred lists the ARGs without a value that this value waits for;
	// non-empty means the value is not known yet.
	deferred []string
	// bad: its line had an error, already reported; words that use it are
	// not checked again.
	bad bool
}

// vars is the expansion environment: the ENV and ARG values set so far.
// It implements buildkit's shell.EnvGetter.
type vars struct {
	env, args map[string]variable
	used      int  // bytes of values handed to the lexer so far
	overflow  bool // used passed maxExpansion
}

func newVars() *vars {
	return &vars{env: map[string]variable{}, args: map[string]variable{}}
}

// lookup finds a name as Dockerfiles do: ENV wins over an ARG of the same name.
func (v *vars) lookup(name string) (variable, bool) {
	if x, ok := v.env[name]; ok {
		return x, true
	}
	x, ok := v.args[name]
	return x, ok
}

// Get is called by the lexer. A value that waits for Resolve expands to a
// placeholder: the word that uses it is kept as written anyway, and a
// non-empty placeholder keeps ${NAME:?} and friends from failing early.
func (v *vars) Get(name string) (string, bool) {
	x, ok := v.lookup(name)
	if !ok {
		return "", false
	}
	if len(x.deferred) > 0 {
		return name, true
	}
	v.used += len(x.value)
	if v.used > maxExpansion {
		v.overflow = true
		return "", true
	}
	return x.value, true
}

// Keys is part of shell.EnvGetter.
func (v *vars) Keys() []string {
	keys := make([]string, 0, len(v.env)+len(v.args))
	for k := range v.env {
		keys = append(keys, k)
	}
	for k := range v.args {
		if _, ok := v.env[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// rePatternSubst finds ${NAME/pattern/replacement}, which could multiply the
// length of a value by the length of the line.
var rePatternSubst = core.LazyRegexp(`\$\{(?:[A-Za-z0-9_]+|[@*#?$!-])/`)

// expand expands one word as written. It returns the value, the ARGs without
// a value it waits for (then the value is meaningless and the caller keeps
// the text as written), and false when it reported an error.
func (b *builder) expand(what, raw string) (string, []string, bool) {
	if rePatternSubst().MatchString(raw) {
		b.errorf("%s: ${NAME/PATTERN/REPLACEMENT} substitution is not supported in a Runfile", what)
		return "", nil, false
	}
	if nesting(raw) > maxNesting {
		b.errorf("%s: ${...} is nested more than %d deep", what, maxNesting)
		return "", nil, false
	}
	res, err := b.lex.ProcessWordWithMatches(raw, b.vars)
	if b.vars.overflow {
		if !b.overflowed {
			b.overflowed = true
			b.errorf("the variables expand to more than %d MiB of text; a Runfile cannot be that large", maxExpansion>>20)
		}
		return "", nil, false
	}
	if err != nil {
		msg := lowerFirst(innermost(err).Error())
		if strings.ContainsRune(msg, utf8.RuneError) {
			msg = "syntax error: missing '}'" // the lexer names the end of text as U+FFFD
		}
		b.errorf("%s: %s in %s", what, msg, show(raw))
		return "", nil, false
	}
	ok := true
	for _, name := range sortedKeys(res.Unmatched) {
		if b.undefined[name] {
			ok = false
			continue
		}
		b.undefined[name] = true
		ok = false
		if isName(name) {
			b.errorf("${%s} is not defined; declare it with ARG %s[=DEFAULT] before this line", name, name)
		} else {
			b.errorf("$%s is not a variable a Runfile can expand; write %c$ for a literal $", name, b.escape)
		}
	}
	if !ok {
		return "", nil, false
	}
	var deferred []string
	for name := range res.Matched {
		x, _ := b.vars.lookup(name)
		if x.bad {
			return "", nil, false
		}
		deferred = union(deferred, x.deferred)
	}
	if len(deferred) > 0 {
		return raw, deferred, true
	}
	if len(res.Result) > maxWordLen {
		b.errorf("%s expands to %d bytes; a value may be at most %d", what, len(res.Result), maxWordLen)
		return "", nil, false
	}
	return res.Result, nil, true
}

// nesting returns how deep ${ } pairs nest in s, roughly: enough to refuse
// input built to exhaust the lexer's recursion.
func nesting(s string) int {
	depth, most := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			depth++
			most = max(most, depth)
			i++
		case s[i] == '}' && depth > 0:
			depth--
		}
	}
	return most
}

var reName = core.LazyRegexp(`^[A-Za-z_][A-Za-z0-9_]*$`)

func isName(s string) bool { return reName().MatchString(s) }

func sortedKeys(m map[string]struct{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// union adds the names in b to a, keeping a sorted and without duplicates.
func union(a, b []string) []string {
	for _, n := range b {
		if i, found := slices.BinarySearch(a, n); !found {
			a = slices.Insert(a, i, n)
		}
	}
	return a
}

// splitWords splits arguments into words as buildkit does for ENV, LABEL and
// ARG (its parseWords): at white space outside quotes, keeping quotes and
// escapes for the lexer to process.
func splitWords(s string, escape rune) []string {
	const (
		inSpaces = iota
		inWord
		inQuote
	)
	var (
		words   []string
		w       strings.Builder
		phase   = inSpaces
		quote   rune
		blankOK bool
	)
	rs := []rune(s)
	for pos := 0; pos <= len(rs); pos++ {
		var ch rune
		if pos != len(rs) {
			ch = rs[pos]
		}
		if phase == inSpaces {
			if pos == len(rs) {
				break
			}
			if unicode.IsSpace(ch) {
				continue
			}
			phase = inWord
		}
		if pos == len(rs) {
			if blankOK || w.Len() > 0 {
				words = append(words, w.String())
			}
			break
		}
		if phase == inWord {
			if unicode.IsSpace(ch) {
				phase = inSpaces
				if blankOK || w.Len() > 0 {
					words = append(words, w.String())
				}
				w.Reset()
				blankOK = false
				continue
			}
			if ch == '\'' || ch == '"' {
				quote = ch
				blankOK = true
				phase = inQuote
			}
			if ch == escape {
				if pos+1 == len(rs) {
					continue // an escape at the end is dropped
				}
				w.WriteRune(ch)
				pos++
				ch = rs[pos]
			}
			w.WriteRune(ch)
			continue
		}
		// inQuote
		if ch == quote {
			phase = inWord
		}
		if ch == escape && quote != '\'' {
			if pos+1 == len(rs) {
				phase = inWord
				continue
			}
			pos++
			w.WriteRune(ch)
			ch = rs[pos]
		}
		w.WriteRune(ch)
	}
	return words
}
