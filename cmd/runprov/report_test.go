package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
)

// TestReportInChromium: the report of the three chained runs is one file
// that fetches nothing, and a real headless chromium shows every run and
// output digest, the lineage SVG, runs its inline script without errors,
// and shows a hostile Runfile LABEL as text without running it.
func TestReportInChromium(t *testing.T) {
	ch := runChain(t)
	browser := coretest.RequireBinary(t, "chromium")
	dir := t.TempDir()
	report := filepath.Join(dir, "report.html")
	mustCLI(t, 0, ch.rs.dir, "report", ch.a.ID, ch.b.ID, ch.c.ID, "-o", report)
	html, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	external := regexp.MustCompile(`(?i)<(script|img|iframe|link|source|video|audio|object|embed)\b[^>]*\b(src|href|data)\s*=|url\(\s*['"]?(https?:)?//|@import`)
	if m := external.Find(html); m != nil {
		t.Errorf("the report refers to something outside it: %s", m)
	}
	if bytes.Contains(html, []byte(xssLabel)) {
		t.Errorf("the report holds the Runfile label's script unescaped")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	chromium := func(args ...string) (string, string) {
		t.Helper()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + filepath.Join(dir, "profile"),
			"--enable-logging=stderr", "--v=0"}
		var out, errb bytes.Buffer
		c := exec.CommandContext(ctx, browser, append(append(base, args...), "file://"+report)...)
		c.Stdout, c.Stderr = &out, &errb
		if err := c.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
		}
		return out.String(), errb.String()
	}
	dom, logs := chromium("--dump-dom")
	for _, r := range []*core.Run{ch.a, ch.b, ch.c} {
		if !strings.Contains(dom, r.ID) {
			t.Errorf("the rendered report lacks run %s", r.ID)
		}
		for _, f := range append(r.Outputs, r.Inputs...) {
			if !strings.Contains(dom, f.SHA256) {
				t.Errorf("the rendered report lacks the digest %s of run %s", f.SHA256, core.ShortRunID(r.ID))
			}
		}
	}
	if !strings.Contains(dom, `<svg id="lineage-svg"`) || !strings.Contains(dom, `<svg id="timeline-svg"`) {
		t.Errorf("the rendered report lacks the lineage or timeline <svg>")
	}
	if !strings.Contains(dom, ch.rawSum[:12]+" raw") {
		t.Errorf("the lineage graph does not mark the raw data %s raw", ch.rawSum[:12])
	}
	if !strings.Contains(dom, `data-ready="1"`) {
		t.Errorf("the report's script did not run to its end\n%s", logs)
	}
	if !strings.Contains(dom, "&lt;script&gt;document.title='pwned'&lt;/script&gt;") {
		t.Errorf("the Runfile label is not shown as text")
	}
	if !strings.Contains(dom, "<title>runprov report</title>") {
		t.Errorf("the page title changed: the label's script ran")
	}
	if strings.Contains(logs, "Uncaught") || strings.Contains(logs, "Refused to") {
		t.Errorf("console errors:\n%s", logs)
	}

	// --compare picks the pair; without RUN arguments the newest runs.
	other := filepath.Join(dir, "other.html")
	mustCLI(t, 0, ch.rs.dir, "report", "--compare", ch.a.ID[:12]+","+ch.c.ID[:12], "--limit", "2", "-o", other)
	page, _ := os.ReadFile(other)
	if !strings.Contains(string(page), `href="#run-`+ch.a.ID+`">`+core.ShortRunID(ch.a.ID)+`</a> against run`) ||
		strings.Count(string(page), `<section class="run"`) != 2 {
		t.Errorf("report --compare A,C --limit 2: wrong comparison or runs")
	}
	mustCLI(t, exitUsage, ch.rs.dir, "report", "--compare", ch.a.ID)

	shot := filepath.Join(dir, "report.png")
	if d := os.Getenv("RUNPROV_TEST_SCREENSHOT_DIR"); d != "" {
		shot = filepath.Join(d, "report.png") // to look at it
	}
	chromium("--screenshot="+shot, "--window-size=1280,2000", "--hide-scrollbars")
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 1000 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot: %d bytes, %v", len(png), err)
	}
}
