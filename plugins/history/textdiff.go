package history

import (
	"fmt"
	"strings"
)

// maxDiffCells bounds the line-matching table (lines of a × lines of b):
// Runfiles are short; past this the diff says the texts differ.
const maxDiffCells = 4 << 20

// Unified returns a unified diff (as diff -u prints it) of two texts with
// ctx lines of context, or "" when they are equal.
func Unified(nameA, nameB string, a, b []byte, ctx int) string {
	if string(a) == string(b) {
		return ""
	}
	la, lb := splitLines(string(a)), splitLines(string(b))
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", nameA, nameB)
	if len(la)*len(lb) > maxDiffCells {
		fmt.Fprintf(&sb, "@@ the texts differ (%d and %d lines: too long to diff line by line) @@\n", len(la), len(lb))
		return sb.String()
	}
	ops := diffLines(la, lb)
	// Group edits into hunks with ctx lines of context around them.
	type hunk struct{ start, end int } // indexes into ops
	var hunks []hunk
	for i, op := range ops {
		if op.kind == ' ' {
			continue
		}
		lo, hi := max(0, i-ctx), min(len(ops), i+ctx+1)
		if n := len(hunks); n > 0 && lo <= hunks[n-1].end {
			hunks[n-1].end = hi
		} else {
			hunks = append(hunks, hunk{lo, hi})
		}
	}
	for _, h := range hunks {
		// Line numbers of the hunk's first line on each side.
		ai, bi := 0, 0
		for _, op := range ops[:h.start] {
			if op.kind != '+' {
				ai++
			}
			if op.kind != '-' {
				bi++
			}
		}
		na, nb := 0, 0
		for _, op := range ops[h.start:h.end] {
			if op.kind != '+' {
				na++
			}
			if op.kind != '-' {
				nb++
			}
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(ai, na), hunkRange(bi, nb))
		for _, op := range ops[h.start:h.end] {
			sb.WriteByte(op.kind)
			sb.WriteString(op.line)
			if !strings.HasSuffix(op.line, "\n") {
				sb.WriteString("\n\\ No newline at end of file\n")
			}
		}
	}
	return sb.String()
}

// hunkRange is diff -u's "start,count": a count of 0 names the line before.
func hunkRange(start, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

type lineOp struct {
	kind byte // ' ', '-', '+'
	line string
}

// splitLines keeps each line's "\n" so a missing final newline shows.
func splitLines(s string) []string {
	var out []string
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

// diffLines is a longest-common-subsequence edit script: deletions before
// insertions within a change, as diff prints them.
func diffLines(a, b []string) []lineOp {
	n, m := len(a), len(b)
	// lcs[i][j] is the LCS length of a[i:] and b[j:].
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []lineOp
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, lineOp{' ', a[i]})
			i++
			j++
		case j == m || (i < n && lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, lineOp{'-', a[i]})
			i++
		default:
			ops = append(ops, lineOp{'+', b[j]})
			j++
		}
	}
	return ops
}
