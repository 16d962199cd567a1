package consumer

import (
	"fmt"
	"strings"
	"testing"
)

func TestTrailers(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{"Add x.rf\n", "Add x.rf\n\nRunprov-Runfile: x.rf\n"},
		{"Add x.rf", "Add x.rf\n\nRunprov-Runfile: x.rf\n"},
		{"Fix\n\nbody\n", "Fix\n\nbody\n\nRunprov-Runfile: x.rf\n"},
		{"Fix\n\nSigned-off-by: A <a@b>\n", "Fix\n\nSigned-off-by: A <a@b>\nRunprov-Runfile: x.rf\n"},
		// A subject that looks like a trailer is still the subject.
		{"Note: a subject\n", "Note: a subject\n\nRunprov-Runfile: x.rf\n"},
	} {
		got := withTrailer(tc.msg, "x.rf")
		if got != tc.want {
			t.Errorf("withTrailer(%q) = %q, want %q", tc.msg, got, tc.want)
		}
		if p := trailerPaths(got); len(p) != 1 || !p["x.rf"] {
			t.Errorf("trailerPaths(%q) = %v", got, p)
		}
	}
	for msg, want := range map[string]string{
		"Runprov-Runfile: a\n":                                "map[]",
		"x\n\nRunprov-Runfile: a\n\nmore text\n":              "map[]",
		"x\n\nruNProv-runfile:  a b \nRunprov-Runfile: c/d\n": "map[a b:true c/d:true]",
		"x\n\nSee: y\n  continued\nRunprov-Runfile: a\n":      "map[a:true]",
		"x\n\nnot a trailer line\nRunprov-Runfile: a\n":       "map[]",
		"x\n\nRunprov-Runfile: a\n\n":                         "map[a:true]",
	} {
		if got := fmt.Sprint(trailerPaths(msg)); got != want {
			t.Errorf("trailerPaths(%q) = %s, want %s", msg, got, want)
		}
	}
}

func TestLooksLikeRunfile(t *testing.T) {
	pin := "docker.io/library/busybox@sha256:" + strings.Repeat("0", 64)
	for text, want := range map[string]bool{
		"FROM " + pin + "\nCMD [\"true\"]\n":                       true,
		"# a comment\n\nfrom --platform=linux/amd64 " + pin + "\n": true,
		"FROM " + pin + "\nCOPY . /\n":                             false, // a build file
		"FROM busybox\nCMD [\"true\"]\n":                           false, // not pinned
		"ARG IMG=" + pin + "\nFROM ${IMG}\n":                       false, // FROM not first
		"FROM " + pin + "\x00\n":                                   false,
		"hello\n":                                                  false,
	} {
		if _, got := looksLikeRunfile("f", []byte(text)); got != want {
			t.Errorf("looksLikeRunfile(%q) = %v, want %v", text, got, want)
		}
	}
}
