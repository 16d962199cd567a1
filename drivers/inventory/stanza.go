package inventory

import (
	"strings"
)

// stanzas splits a Debian control-style file (dpkg status, R DESCRIPTION)
// into paragraphs of fields; continuation lines join the field before them.
// sep is the key separator: ':' for control files.
func stanzas(data string, sep byte, keep func(key string) bool) []map[string]string {
	var (
		out  []map[string]string
		cur  map[string]string
		last string
	)
	for line := range strings.SplitSeq(data, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			if cur != nil {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur != nil && last != "" {
				cur[last] += " " + strings.TrimSpace(line)
			}
			continue
		}
		i := strings.IndexByte(line, sep)
		if i <= 0 {
			last = ""
			continue
		}
		k := line[:i]
		if !keep(k) {
			last = ""
			continue
		}
		if cur == nil {
			cur = map[string]string{}
		}
		cur[k] = strings.TrimSpace(line[i+1:])
		last = k
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out
}

func keys(names ...string) func(string) bool {
	return func(k string) bool {
		for _, n := range names {
			if k == n {
				return true
			}
		}
		return false
	}
}
