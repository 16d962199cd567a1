package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// benchEnv is what a benchmark gets: the binary, a private directory, the
// repetition count and where to print.
type benchEnv struct {
	runprov string
	dir     string
	n       int
	out     io.Writer
}

// reps is env.n, or def when -n was not given.
func (e *benchEnv) reps(def int) int {
	if e.n > 0 {
		return e.n
	}
	return def
}

// cmd runs a command to completion and returns its stdout; stderr goes into
// the error when it fails.
func (e *benchEnv) cmd(ctx context.Context, extraEnv []string, name string, args ...string) (string, error) {
	c := exec.CommandContext(ctx, name, args...)
	c.Env = append(os.Environ(), extraEnv...)
	c.Dir = e.dir
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// timeIt measures fn once.
func timeIt(fn func() error) (time.Duration, error) {
	start := time.Now()
	err := fn()
	return time.Since(start), err
}

// sample collects durations and reports their median and spread.
type sample []time.Duration

func (s sample) sorted() sample {
	c := append(sample(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c
}

func (s sample) median() time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := s.sorted()
	return c[len(c)/2]
}

func (s sample) quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := s.sorted()
	return c[min(len(c)-1, int(q*float64(len(c))))]
}

// row prints one aligned result line.
func (e *benchEnv) row(label string, s sample) {
	fmt.Fprintf(e.out, "  %-44s median %10s   p10 %10s   p90 %10s   (n=%d)\n", label,
		s.median().Round(time.Microsecond), s.quantile(0.1).Round(time.Microsecond), s.quantile(0.9).Round(time.Microsecond), len(s))
}

// ratio prints a/b of two medians.
func (e *benchEnv) ratio(label string, a, b sample) {
	if b.median() == 0 {
		return
	}
	fmt.Fprintf(e.out, "  %-44s %.2fx\n", label, float64(a.median())/float64(b.median()))
}
