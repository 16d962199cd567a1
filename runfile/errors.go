package runfile

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/runprov/runprov/core"
)

// errList collects the problems of one Parse or Resolve.
type errList struct {
	path string
	errs []*core.PosError
}

func (l *errList) add(line int, format string, a ...any) {
	l.errs = append(l.errs, &core.PosError{Path: l.path, Line: line, Msg: fmt.Sprintf(format, a...)})
}

func (l *errList) len() int { return len(l.errs) }

// err returns nil, the only error, or the first maxErrors joined in line
// order (errors without a line first).
func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	sort.SliceStable(l.errs, func(i, j int) bool { return l.errs[i].Line < l.errs[j].Line })
	if len(l.errs) == 1 {
		return l.errs[0]
	}
	n := min(len(l.errs), maxErrors)
	out := make([]error, n)
	for i := range n {
		out[i] = l.errs[i]
	}
	return errors.Join(out...)
}

// show prints a piece of user text in a message: as is when it is short and
// plain, quoted when it has spaces or odd characters, clipped when long.
func show(s string) string {
	const max = 60
	if len(s) > max {
		cut := max
		for cut > 0 && !utfStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"' {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

func utfStart(b byte) bool { return b&0xC0 != 0x80 }

// suggest returns the candidate closest to word when it is close enough to be
// a typo ("INPTU" for "INPUT"), else "".
func suggest(word string, candidates []string) string {
	w := strings.ToUpper(word)
	limit := 1
	if len(w) >= 6 {
		limit = 2
	}
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if d := editDistance(w, strings.ToUpper(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours cost 1.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20 // not a typo of a keyword
	}
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
