package history

import (
	"fmt"
	"strings"

	"github.com/runprov/runprov/core"
)

// BitForBit is the verdict of a reproduction whose outputs all hash the same.
const BitForBit = "reproduced bit-for-bit"

// Verdict is what a reproduction found, comparing the original run's
// outputs (A) with the reproduction's (B).
type Verdict struct {
	Identical bool      `json:"identical"`
	Outputs   FilesDiff `json:"outputs"`
	// Exit is set when the two runs ended differently ("succeeded 0 -> failed 3").
	Exit string `json:"exit,omitempty"`
}

// Judge compares a reproduction with its original: outputs by hash and how
// each run ended.
func Judge(orig, repro *core.Run) Verdict {
	v := Verdict{Outputs: CompareFiles(orig.Outputs, repro.Outputs)}
	if a, b := endText(orig), endText(repro); a != b {
		v.Exit = a + " -> " + b
	}
	v.Identical = !v.Outputs.Differs() && v.Exit == ""
	return v
}

func endText(r *core.Run) string {
	if r.ExitCode == nil {
		return string(r.Status)
	}
	return fmt.Sprintf("%s %d", r.Status, *r.ExitCode)
}

// maxNamed is how many differing files the one-line verdict names.
const maxNamed = 10

// String is the one-line verdict recorded with the reproduction:
// "reproduced bit-for-bit", or "not reproduced: changed out/a.txt; ...".
func (v Verdict) String() string {
	if v.Identical {
		return BitForBit
	}
	var parts []string
	if v.Exit != "" {
		parts = append(parts, "ended "+v.Exit)
	}
	named := 0
	list := func(what string, fs []FileChange) {
		if len(fs) == 0 {
			return
		}
		var names []string
		for _, f := range fs {
			if named == maxNamed {
				break
			}
			names = append(names, FileLabel(f.Name, f.Path))
			named++
		}
		s := what + " " + strings.Join(names, ", ")
		if len(names) < len(fs) {
			s += fmt.Sprintf(" and %d more", len(fs)-len(names))
		}
		parts = append(parts, s)
	}
	list("changed", v.Outputs.Changed)
	list("missing", v.Outputs.Removed)
	list("new", v.Outputs.Added)
	return "not reproduced: " + strings.Join(parts, "; ")
}

// FileLabel names a manifest entry for people: the OUTPUT path or INPUT
// name joined with the file's relative path.
func FileLabel(name, path string) string {
	switch {
	case name == "":
		return path
	case path == "" || path == ".":
		return name
	}
	return strings.TrimSuffix(name, "/") + "/" + path
}
