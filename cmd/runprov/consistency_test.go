package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBareAndVersion: bare runprov prints the help on stderr and exits 2;
// runprov --version prints what runprov version does.
func TestBareAndVersion(t *testing.T) {
	store := newCLIStore(t)
	out, errs, code := cli(t, store)
	if code != exitUsage || out != "" || !strings.Contains(errs, "Available Commands:") {
		t.Errorf("bare runprov: exit %d, stdout %q, stderr:\n%s", code, out, errs)
	}
	v, _ := mustCLI(t, 0, store, "version")
	if dv, _ := mustCLI(t, 0, store, "--version"); dv != v || !strings.HasPrefix(v, "runprov ") {
		t.Errorf("--version = %q, version = %q", dv, v)
	}
}

// TestArgumentErrorsInWords: a missing argument is named in words, with
// where to find one; extra arguments are refused as usage errors.
func TestArgumentErrorsInWords(t *testing.T) {
	store := newCLIStore(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"show"}, "show: which run? (runprov runs lists them"},
		{[]string{"export", "--format", "json"}, "export: which run?"},
		{[]string{"reproduce"}, "reproduce: which run?"},
		{[]string{"logs"}, "logs: which run?"},
		{[]string{"diff", "last"}, "diff: which two runs?"},
		{[]string{"cat"}, "cat: which commit? (runprov log lists them"},
		{[]string{"run"}, "run: which commit? (runprov log lists them"},
		{[]string{"trace"}, "trace: which file?"},
		{[]string{"query"}, "query: which SQL?"},
		{[]string{"image", "verify"}, "image verify: which image?"},
		{[]string{"image", "approve"}, "image approve: which image?"},
		{[]string{"push"}, "push: to which remote?"},
		{[]string{"show", "a", "b"}, "show takes one argument, not 2: a b"},
	} {
		_, errs, code := cli(t, store, c.args...)
		if code != exitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("runprov %s: exit %d, stderr %q; want 2 and %q", strings.Join(c.args, " "), code, errs, c.want)
		}
	}
}

// TestTimeFormats: tables show local time with its zone on a terminal and
// RFC 3339 (UTC) with --csv, as JSON has it.
func TestTimeFormats(t *testing.T) {
	old := time.Local
	time.Local = time.FixedZone("XST", 5*3600)
	t.Cleanup(func() { time.Local = old })
	store := newCLIStore(t)
	addAt(t, store, "default", "Runfile", "FROM busybox@sha256:"+strings.Repeat("c", 64)+"\nCMD [\"true\"]\n")
	out, _ := mustCLI(t, 0, store, "log")
	if !regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d XST`).MatchString(out) {
		t.Errorf("log on a terminal does not show local time with its zone:\n%s", out)
	}
	out, _ = mustCLI(t, 0, store, "--csv", "log")
	if !regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`).MatchString(out) {
		t.Errorf("log --csv does not show RFC 3339 UTC:\n%s", out)
	}
	out, _ = mustCLI(t, 0, store, "config", "log")
	if !strings.Contains(out, " XST") {
		t.Errorf("config log on a terminal:\n%s", out)
	}
}

// TestExportRefusesOverwrite: export -o refuses an existing file, or a
// crate directory that is not empty, in every format, unless --force.
func TestExportRefusesOverwrite(t *testing.T) {
	store := historyStore(t, 2, 1, false)
	dir := t.TempDir()
	for _, format := range []string{"json", "intoto", "prov", "rocrate"} {
		out := filepath.Join(dir, format)
		if format == "rocrate" {
			os.MkdirAll(out, 0o755)
		}
		target := out
		if format != "rocrate" {
			target = out + ".json"
			os.WriteFile(target, []byte("precious"), 0o644)
		} else {
			os.WriteFile(filepath.Join(out, "precious"), []byte("precious"), 0o644)
		}
		_, errs, code := cli(t, store, "export", "last", "--format", format, "-o", target)
		if code != exitRunprov || !strings.Contains(errs, "--force") {
			t.Errorf("export --format %s over an existing output: exit %d\n%s", format, code, errs)
		}
		if format != "rocrate" {
			if data, _ := os.ReadFile(target); string(data) != "precious" {
				t.Errorf("export --format %s overwrote %s", format, target)
			}
		}
		mustCLI(t, 0, store, "export", "last", "--format", format, "-o", target, "--force")
		if format != "rocrate" {
			if data, _ := os.ReadFile(target); !strings.HasPrefix(string(data), "{") {
				t.Errorf("export --force did not write %s: %q", target, data)
			}
		} else if _, err := os.Stat(filepath.Join(out, "ro-crate-metadata.json")); err != nil {
			t.Errorf("export --format rocrate --force: %v", err)
		}
	}
}
