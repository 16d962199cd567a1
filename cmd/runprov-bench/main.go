// Command runprov-bench measures runprov side by side with the baseline each
// benchmark names (tar, sha256sum, bare runc, podman, the git CLI, sbatch) and
// prints medians and ratios. `make bench` runs it after the Go benchmarks.
//
//	go run ./cmd/runprov-bench -runprov bin/runprov [-only NAME] [-n N]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
)

// benchmark is one comparison. It prints its own table to env.out.
type benchmark struct {
	name string
	desc string
	run  func(ctx context.Context, env *benchEnv) error
}

// benchmarks is the explicit list; each lives in its own bench_*.go file.
var benchmarks = []benchmark{
	addLatency,
	queryCommits,
	unpackImage,
	systemKernel,
	remoteSync,
	historyBench,
	lineageBench,
	runStart,
	inputHash,
	inputsCached,
	slurmBench,
	recordsBench,
	chainBench,
	inventoryBench,
}

func main() {
	var (
		runprov = flag.String("runprov", "bin/runprov", "the runprov binary to measure")
		only    = flag.String("only", "", "run only the benchmarks whose name contains this")
		n       = flag.Int("n", 0, "repetitions per measurement (0: each benchmark's default)")
		keep    = flag.Bool("keep", false, "keep the work directory")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	bin, err := filepath.Abs(*runprov)
	if err != nil {
		fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		fatal(fmt.Errorf("%s: %w (run make build first)", bin, err))
	}
	work, err := os.MkdirTemp("", "runprov-bench-")
	if err != nil {
		fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(work)
	}
	failed := 0
	for _, b := range benchmarks {
		if *only != "" && !strings.Contains(b.name, *only) {
			continue
		}
		dir := filepath.Join(work, b.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fatal(err)
		}
		env := &benchEnv{runprov: bin, dir: dir, n: *n, out: os.Stdout}
		fmt.Printf("\n== %s: %s\n", b.name, b.desc)
		if err := b.run(ctx, env); err != nil {
			fmt.Printf("!! %s failed: %v\n", b.name, err)
			failed++
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "runprov-bench:", err)
	os.Exit(1)
}
