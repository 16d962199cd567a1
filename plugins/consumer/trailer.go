package consumer

import (
	"bytes"
	"strings"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/runfile"
)

// RunfileTrailer is the git trailer add writes into each commit, naming the
// Runfile it records, so that the commit is indexed wherever it is pulled
// whatever its path.
const RunfileTrailer = "Runprov-Runfile"

// trailerLineRE is a git trailer line: "Token: value".
var trailerLineRE = core.LazyRegexp(`^[A-Za-z0-9][A-Za-z0-9-]*:[ \t]`)

// withTrailer appends a RunfileTrailer line per path to msg. As git
// interpret-trailers does, it joins a trailer block that ends the message
// and otherwise opens one after a blank line.
func withTrailer(msg string, paths ...string) string {
	msg = strings.TrimRight(msg, "\n")
	sep := "\n\n"
	if _, ok := trailerBlock(msg); ok {
		sep = "\n"
	}
	var b strings.Builder
	b.WriteString(msg)
	for i, p := range paths {
		if i == 0 {
			b.WriteString(sep)
		} else {
			b.WriteString("\n")
		}
		b.WriteString(RunfileTrailer + ": " + p)
	}
	b.WriteString("\n")
	return b.String()
}

// trailerBlock returns the lines of msg's last paragraph when it is a
// trailer block: not the subject paragraph, and every line a trailer or a
// continuation (leading white space) of one.
func trailerBlock(msg string) ([]string, bool) {
	msg = strings.TrimRight(msg, "\n")
	i := strings.LastIndex(msg, "\n\n")
	if i < 0 {
		return nil, false
	}
	lines := strings.Split(strings.TrimLeft(msg[i:], "\n"), "\n")
	for n, l := range lines {
		cont := strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")
		if !trailerLineRE().MatchString(l) && (n == 0 || !cont) {
			return nil, false
		}
	}
	return lines, true
}

// trailerPaths returns the set of paths msg's RunfileTrailer lines name, nil
// when it has none. Keys compare case-insensitively, as git's do.
func trailerPaths(msg string) map[string]bool {
	lines, ok := trailerBlock(msg)
	if !ok {
		return nil
	}
	var paths map[string]bool
	for _, l := range lines {
		key, val, _ := strings.Cut(l, ":")
		if !strings.EqualFold(key, RunfileTrailer) {
			continue
		}
		if paths == nil {
			paths = map[string]bool{}
		}
		paths[strings.TrimSpace(val)] = true
	}
	return paths
}

// pinnedFromRE is the content rule's first instruction: FROM with an image
// pinned by digest, written out (no ARG in it).
var pinnedFromRE = core.LazyRegexp(`(?i)^[ \t]*FROM[ \t]+(--platform=\S+[ \t]+)?[^\s$@]+@sha256:[0-9a-f]{64}[ \t]*\r?$`)

// looksLikeRunfile is the content rule for files a trailer or glob does not
// select: the first instruction pins an image as FROM NAME@sha256:HEX and
// the whole file parses as a valid Runfile. The first test is cheap, so the
// full parse runs only on likely candidates.
func looksLikeRunfile(p string, data []byte) (*runfile.File, bool) {
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, false
	}
	first := ""
	for _, l := range strings.SplitN(string(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))), "\n", 64) {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			first = l
			break
		}
	}
	if !pinnedFromRE().MatchString(first) {
		return nil, false
	}
	rf, err := runfile.Parse(p, data)
	if err != nil {
		return nil, false
	}
	return rf, true
}
