package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runprov/runprov/plugins/producer"
)

var inputsCached = benchmark{
	name: "inputs-cached",
	desc: "runprov run over 512 MiB in 256 unchanged files (input cache) vs a run with one tiny input; first-time hashing (run --rehash, and the manifest alone) vs sha256sum",
	run:  benchInputsCached,
}

func benchInputsCached(ctx context.Context, env *benchEnv) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (runc with a user namespace)")
	}
	reps := env.reps(15)
	store, commit, _, err := trueRunStore(ctx, env, "INPUT data /data\n")
	if err != nil {
		return err
	}

	big := filepath.Join(env.dir, "big")
	files, err := writeManyFiles(big, 256, 2<<20)
	if err != nil {
		return err
	}
	tiny := filepath.Join(env.dir, "tiny")
	os.MkdirAll(tiny, 0o755)
	if err := os.WriteFile(filepath.Join(tiny, "one.txt"), []byte("tiny\n"), 0o644); err != nil {
		return err
	}
	// Files changed within RacyWindow of their hash are never cached.
	time.Sleep(producer.RacyWindow + 100*time.Millisecond)
	runIn := func(dir string, extra ...string) (time.Duration, error) {
		d, _, err := timeRusage(ctx, env.runprov, append([]string{"--store", store, "-q", "run", commit, "--input", "data=" + dir}, extra...)...)
		return d, err
	}
	if _, err := runIn(tiny); err != nil { // unpacks the rootfs once
		return err
	}

	// First-time hashing, warm page cache for all.
	if _, _, err := timeRusage(ctx, "sha256sum", files...); err != nil {
		return err
	}
	var shaS, manS, fullS sample
	for range env.reps(5) {
		d, _, err := timeRusage(ctx, "sha256sum", files...)
		if err != nil {
			return err
		}
		shaS = append(shaS, d)
		if d, err = timeIt(func() error { _, err := producer.Manifest(ctx, "data", big, 0); return err }); err != nil {
			return err
		}
		manS = append(manS, d)
		if d, err = runIn(big, "--rehash"); err != nil {
			return err
		}
		fullS = append(fullS, d)
	}

	// The --rehash runs left the cache warm; tiny's entry is cached too.
	var cachedS, tinyS sample
	for range reps {
		d, err := runIn(big)
		if err != nil {
			return err
		}
		cachedS = append(cachedS, d)
		if d, err = runIn(tiny); err != nil {
			return err
		}
		tinyS = append(tinyS, d)
	}
	if out, err := env.cmd(ctx, nil, env.runprov, "--store", store, "--json", "show", "last"); err != nil || !strings.Contains(out, `"inputs_cached": 1`) {
		return fmt.Errorf("the tiny run did not use the input cache (%v):\n%s", err, out)
	}

	mbps := func(s sample) string { return fmt.Sprintf("%.0f MB/s", float64(512<<20)/1e6/s.median().Seconds()) }
	env.row("runprov run, 512 MiB in 256 files, cached", cachedS)
	env.row("runprov run, one tiny input", tinyS)
	env.ratio("cached 512 MiB / tiny input (target <= 1.3x)", cachedS, tinyS)
	env.row("sha256sum, 512 MiB in 256 files ("+mbps(shaS)+")", shaS)
	env.row("runprov input manifest, 512 MiB ("+mbps(manS)+")", manS)
	env.row("runprov run --rehash, 512 MiB ("+mbps(fullS)+")", fullS)
	env.ratio("sha256sum / run --rehash (target >= 1x)", shaS, fullS)
	env.ratio("sha256sum / manifest alone", shaS, manS)
	return nil
}

// writeManyFiles writes n files of size bytes of incompressible data under
// dir and returns their paths.
func writeManyFiles(dir string, n int, size int64) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	var paths []string
	for i := range n {
		rand.NewChaCha8([32]byte{byte(i), byte(i >> 8), 'i'}).Read(buf)
		p := filepath.Join(dir, fmt.Sprintf("part-%03d.bin", i))
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
