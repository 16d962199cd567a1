package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

var remoteSync = benchmark{
	name: "remote",
	desc: "`runprov push` / `runprov pull` of a 1000-commit repo to a fresh bare repo, vs `git push` / `git fetch` of the same repository by the git CLI",
	run:  benchRemote,
}

// remoteCommits is the history size the remote benchmark measures.
const remoteCommits = 1000

func benchRemote(ctx context.Context, env *benchEnv) error {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return fmt.Errorf("the remote benchmark needs the git CLI: %w", err)
	}
	git := func(dir string, args ...string) error {
		_, err := env.cmd(ctx, nil, gitBin, append([]string{"-C", dir}, args...)...)
		return err
	}
	bare := func(name string) (string, error) {
		p := filepath.Join(env.dir, name)
		if err := os.RemoveAll(p); err != nil {
			return "", err
		}
		_, err := env.cmd(ctx, nil, gitBin, "init", "-q", "--bare", "-b", "main", p)
		return p, err
	}
	// A history of remoteCommits commits, each changing the Runfile, made
	// by git fast-import (1000 runprov adds would take a minute and measure
	// nothing here), then pulled into the store being measured.
	seed, err := bare("seed.git")
	if err != nil {
		return err
	}
	if err := fastImport(ctx, gitBin, seed, remoteCommits); err != nil {
		return err
	}
	store := filepath.Join(env.dir, "store")
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "init"); err != nil {
		return err
	}
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "pull", seed); err != nil {
		return err
	}
	// The git CLI's copy of the same repository: pushed once by runprov,
	// then cloned, so both sides push the very same objects.
	first, err := bare("first.git")
	if err != nil {
		return err
	}
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "push", first); err != nil {
		return err
	}
	export := filepath.Join(env.dir, "export.git")
	if _, err := env.cmd(ctx, nil, gitBin, "clone", "-q", "--bare", first, export); err != nil {
		return err
	}

	reps := env.reps(7)
	var rpPush, gitPush, rpPull, gitFetch sample
	for i := range reps {
		dst, err := bare("push-runprov.git")
		if err != nil {
			return err
		}
		d, err := timeIt(func() error {
			_, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "push", dst)
			return err
		})
		if err != nil {
			return err
		}
		rpPush = append(rpPush, d)

		dst, err = bare("push-git.git")
		if err != nil {
			return err
		}
		d, err = timeIt(func() error { return git(export, "push", "-q", dst, "main") })
		if err != nil {
			return err
		}
		gitPush = append(gitPush, d)

		fresh := filepath.Join(env.dir, fmt.Sprintf("pull-store-%d", i))
		if _, err := env.cmd(ctx, nil, env.runprov, "--store", fresh, "-q", "init"); err != nil {
			return err
		}
		d, err = timeIt(func() error {
			_, err := env.cmd(ctx, nil, env.runprov, "--store", fresh, "-q", "pull", first)
			return err
		})
		if err != nil {
			return err
		}
		rpPull = append(rpPull, d)
		if i == 0 {
			out, err := env.cmd(ctx, nil, env.runprov, "--store", fresh, "--csv", "log")
			if err != nil {
				return err
			}
			if rows := strings.Count(out, "\n") - 1; rows != remoteCommits {
				return fmt.Errorf("the pulled store indexes %d commits, want %d", rows, remoteCommits)
			}
		}
		os.RemoveAll(fresh)

		into, err := bare("fetch-git.git")
		if err != nil {
			return err
		}
		d, err = timeIt(func() error { return git(into, "fetch", "-q", first, "+refs/heads/main:refs/heads/main") })
		if err != nil {
			return err
		}
		gitFetch = append(gitFetch, d)
	}
	// The everyday case: one new commit on top of the 1000, both ways.
	// store pushes it to first.git and a store that pulled first.git
	// before pulls it; the git CLI fetches it into export.git and pushes
	// it on to a mirror that had the 1000.
	other := filepath.Join(env.dir, "other-store")
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", other, "-q", "init"); err != nil {
		return err
	}
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", other, "-q", "pull", first); err != nil {
		return err
	}
	mirror := filepath.Join(env.dir, "mirror.git")
	if _, err := env.cmd(ctx, nil, gitBin, "clone", "-q", "--bare", first, mirror); err != nil {
		return err
	}
	file := filepath.Join(env.dir, "Runfile")
	var rpPush1, rpPull1, gitPush1, gitFetch1 sample
	for i := range reps {
		if err := os.WriteFile(file, remoteBenchRunfile(remoteCommits+1+i), 0o644); err != nil {
			return err
		}
		if _, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "add", file); err != nil {
			return err
		}
		for _, m := range []struct {
			s    *sample
			name string
			args []string
		}{
			{&rpPush1, env.runprov, []string{"--store", store, "-q", "push", first}},
			{&rpPull1, env.runprov, []string{"--store", other, "-q", "pull", first}},
			{&gitFetch1, gitBin, []string{"-C", export, "fetch", "-q", first, "+refs/heads/main:refs/heads/main"}},
			{&gitPush1, gitBin, []string{"-C", export, "push", "-q", mirror, "main"}},
		} {
			d, err := timeIt(func() error {
				_, err := env.cmd(ctx, nil, m.name, m.args...)
				return err
			})
			if err != nil {
				return err
			}
			*m.s = append(*m.s, d)
		}
	}
	var version sample
	for range reps {
		d, err := timeIt(func() error {
			_, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "log", "-n", "1")
			return err
		})
		if err != nil {
			return err
		}
		version = append(version, d)
	}
	env.row(fmt.Sprintf("runprov push, %d commits, fresh bare", remoteCommits), rpPush)
	env.row("baseline: git push, same repo", gitPush)
	env.ratio("runprov push / git push", rpPush, gitPush)
	env.row(fmt.Sprintf("runprov pull, %d commits, empty store", remoteCommits), rpPull)
	env.row("baseline: git fetch into a fresh bare", gitFetch)
	env.ratio("runprov pull / git fetch", rpPull, gitFetch)
	env.row("runprov push, 1 new commit on 1000", rpPush1)
	env.row("baseline: git push, 1 new commit", gitPush1)
	env.ratio("runprov push / git push (1 commit)", rpPush1, gitPush1)
	env.row("runprov pull, 1 new commit on 1000", rpPull1)
	env.row("baseline: git fetch, 1 new commit", gitFetch1)
	env.ratio("runprov pull / git fetch (1 commit)", rpPull1, gitFetch1)
	env.row("context: runprov log -n 1 (start + open)", version)
	return nil
}

// fastImport writes n commits to main of the bare repo dir, each changing
// one valid Runfile.
func fastImport(ctx context.Context, gitBin, dir string, n int) error {
	var in bytes.Buffer
	for i := 1; i <= n; i++ {
		msg := fmt.Sprintf("rev %d\n", i)
		body := remoteBenchRunfile(i)
		fmt.Fprintf(&in, "commit refs/heads/main\nmark :%d\n", i)
		fmt.Fprintf(&in, "author Bench <bench@localhost> %d +0000\ncommitter Bench <bench@localhost> %d +0000\n", 1700000000+i, 1700000000+i)
		fmt.Fprintf(&in, "data %d\n%s", len(msg), msg)
		if i > 1 {
			fmt.Fprintf(&in, "from :%d\n", i-1)
		}
		fmt.Fprintf(&in, "M 100644 inline Runfile\ndata %d\n%s\n", len(body), body)
	}
	cmd := exec.CommandContext(ctx, gitBin, "-C", dir, "fast-import", "--quiet")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git fast-import: %w: %s", err, out)
	}
	return nil
}

// remoteBenchRunfile is a valid Runfile that differs in one comment per commit.
func remoteBenchRunfile(i int) []byte {
	return fmt.Appendf(nil, `FROM docker.io/library/busybox@sha256:%064x
USER 1000:1000
# revision %d
CMD ["/bin/sh", "-c", "wc -l /safe_data/* > /safe_outputs/count"]
`, 1, i)
}
