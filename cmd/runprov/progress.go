package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/runprov/runprov/core"
)

// progress returns a core.Progress for long work: a redrawn bar when stderr
// is a terminal, a line per unit of work otherwise, nothing with -q.
func (a *app) progress() core.Progress {
	if a.quiet {
		return core.NoProgress{}
	}
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &barProgress{w: a.stderr}
	}
	return &lineProgress{w: a.stderr}
}

// lineProgress prints one line when a unit of work ends.
type lineProgress struct {
	w     io.Writer
	what  string
	total int64
	done  int64
	start time.Time
}

func (p *lineProgress) Start(what string, total int64) {
	p.what, p.total, p.done, p.start = what, total, 0, time.Now()
}
func (p *lineProgress) Add(n int64) { p.done += n }
func (p *lineProgress) Done() {
	fmt.Fprintf(p.w, "%s: %s in %s\n", p.what, core.HumanBytes(p.done), time.Since(p.start).Round(time.Millisecond))
}

// barProgress redraws one line at most ten times a second.
type barProgress struct {
	w     io.Writer
	what  string
	total int64
	done  int64
	drawn time.Time
}

func (p *barProgress) Start(what string, total int64) {
	p.what, p.total, p.done, p.drawn = what, total, 0, time.Time{}
	p.draw(true)
}
func (p *barProgress) Add(n int64) { p.done += n; p.draw(false) }
func (p *barProgress) Done()       { p.draw(true); fmt.Fprintln(p.w) }

func (p *barProgress) draw(force bool) {
	if !force && time.Since(p.drawn) < 100*time.Millisecond {
		return
	}
	p.drawn = time.Now()
	if p.total <= 0 {
		fmt.Fprintf(p.w, "\r%s %s", p.what, core.HumanBytes(p.done))
		return
	}
	const width = 30
	frac := float64(p.done) / float64(p.total)
	frac = min(max(frac, 0), 1)
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %s/%s", p.what, strings.Repeat("=", n), strings.Repeat(" ", width-n),
		frac*100, core.HumanBytes(p.done), core.HumanBytes(p.total))
}
