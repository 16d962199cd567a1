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
	fx, err := newRemoteFixture(ctx, env)
	if err != nil {
		return err
	}
	reps := env.reps(7)
	full, err := fx.fullHistory(ctx, reps)
	if err != nil {
		return err
	}
	one, err := fx.oneCommit(ctx, reps)
	if err != nil {
		return err
	}
	var version sample
	for range reps {
		d, err := timeIt(func() error {
			_, err := env.cmd(ctx, nil, env.runprov, "--store", fx.store, "-q", "log", "-n", "1")
			return err
		})
		if err != nil {
			return err
		}
		version = append(version, d)
	}
	env.row(fmt.Sprintf("runprov push, %d commits, fresh bare", remoteCommits), full.rpPush)
	env.row("baseline: git push, same repo", full.gitPush)
	env.ratio("runprov push / git push", full.rpPush, full.gitPush)
	env.row(fmt.Sprintf("runprov pull, %d commits, empty store", remoteCommits), full.rpPull)
	env.row("baseline: git fetch into a fresh bare", full.gitFetch)
	env.ratio("runprov pull / git fetch", full.rpPull, full.gitFetch)
	env.row("runprov push, 1 new commit on 1000", one.rpPush)
	env.row("baseline: git push, 1 new commit", one.gitPush)
	env.ratio("runprov push / git push (1 commit)", one.rpPush, one.gitPush)
	env.row("runprov pull, 1 new commit on 1000", one.rpPull)
	env.row("baseline: git fetch, 1 new commit", one.gitFetch)
	env.ratio("runprov pull / git fetch (1 commit)", one.rpPull, one.gitFetch)
	env.row("context: runprov log -n 1 (start + open)", version)
	return nil
}

// remoteFixture is a store holding remoteCommits commits, first.git (the
// same history pushed by runprov) and export.git (a clone the git CLI
// pushes from).
type remoteFixture struct {
	env                  *benchEnv
	gitBin               string
	store, first, export string
}

// remoteSamples are the timings of one comparison of runprov and git.
type remoteSamples struct{ rpPush, gitPush, rpPull, gitFetch sample }

func newRemoteFixture(ctx context.Context, env *benchEnv) (*remoteFixture, error) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("the remote benchmark needs the git CLI: %w", err)
	}
	fx := &remoteFixture{env: env, gitBin: gitBin, store: filepath.Join(env.dir, "store"), export: filepath.Join(env.dir, "export.git")}
	// A history of remoteCommits commits, each changing the Runfile, made
	// by git fast-import (1000 runprov adds would take a minute and measure
	// nothing here), then pulled into the store being measured.
	seed, err := fx.bare(ctx, "seed.git")
	if err != nil {
		return nil, err
	}
	if err := fastImport(ctx, gitBin, seed, remoteCommits); err != nil {
		return nil, err
	}
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", fx.store, "-q", "init"); err != nil {
		return nil, err
	}
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", fx.store, "-q", "pull", seed); err != nil {
		return nil, err
	}
	// The git CLI's copy of the same repository: pushed once by runprov,
	// then cloned, so both sides push the very same objects.
	if fx.first, err = fx.bare(ctx, "first.git"); err != nil {
		return nil, err
	}
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", fx.store, "-q", "push", fx.first); err != nil {
		return nil, err
	}
	if _, err := env.cmd(ctx, nil, gitBin, "clone", "-q", "--bare", fx.first, fx.export); err != nil {
		return nil, err
	}
	return fx, nil
}

// bare makes a new empty bare repository name.
func (fx *remoteFixture) bare(ctx context.Context, name string) (string, error) {
	p := filepath.Join(fx.env.dir, name)
	if err := os.RemoveAll(p); err != nil {
		return "", err
	}
	_, err := fx.env.cmd(ctx, nil, fx.gitBin, "init", "-q", "--bare", "-b", "main", p)
	return p, err
}

// timeCmd times one command and adds it to s.
func (fx *remoteFixture) timeCmd(ctx context.Context, s *sample, name string, args ...string) error {
	d, err := timeIt(func() error {
		_, err := fx.env.cmd(ctx, nil, name, args...)
		return err
	})
	if err == nil {
		*s = append(*s, d)
	}
	return err
}

// fullHistory times pushing the whole history to a fresh bare repository
// and pulling it into an empty store, against the git CLI.
func (fx *remoteFixture) fullHistory(ctx context.Context, reps int) (remoteSamples, error) {
	env := fx.env
	var s remoteSamples
	for i := range reps {
		dst, err := fx.bare(ctx, "push-runprov.git")
		if err != nil {
			return s, err
		}
		if err := fx.timeCmd(ctx, &s.rpPush, env.runprov, "--store", fx.store, "-q", "push", dst); err != nil {
			return s, err
		}
		if dst, err = fx.bare(ctx, "push-git.git"); err != nil {
			return s, err
		}
		if err := fx.timeCmd(ctx, &s.gitPush, fx.gitBin, "-C", fx.export, "push", "-q", dst, "main"); err != nil {
			return s, err
		}
		fresh := filepath.Join(env.dir, fmt.Sprintf("pull-store-%d", i))
		if _, err := env.cmd(ctx, nil, env.runprov, "--store", fresh, "-q", "init"); err != nil {
			return s, err
		}
		if err := fx.timeCmd(ctx, &s.rpPull, env.runprov, "--store", fresh, "-q", "pull", fx.first); err != nil {
			return s, err
		}
		if i == 0 {
			out, err := env.cmd(ctx, nil, env.runprov, "--store", fresh, "--csv", "log")
			if err != nil {
				return s, err
			}
			if rows := strings.Count(out, "\n") - 1; rows != remoteCommits {
				return s, fmt.Errorf("the pulled store indexes %d commits, want %d", rows, remoteCommits)
			}
		}
		os.RemoveAll(fresh)
		into, err := fx.bare(ctx, "fetch-git.git")
		if err != nil {
			return s, err
		}
		if err := fx.timeCmd(ctx, &s.gitFetch, fx.gitBin, "-C", into, "fetch", "-q", fx.first, "+refs/heads/main:refs/heads/main"); err != nil {
			return s, err
		}
	}
	return s, nil
}

// oneCommit times the everyday case, one new commit on top of the 1000,
// both ways: the store pushes it to first.git and a store that pulled
// first.git before pulls it; the git CLI fetches it into export.git and
// pushes it on to a mirror that had the 1000.
func (fx *remoteFixture) oneCommit(ctx context.Context, reps int) (remoteSamples, error) {
	env := fx.env
	var s remoteSamples
	other := filepath.Join(env.dir, "other-store")
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", other, "-q", "init"); err != nil {
		return s, err
	}
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", other, "-q", "pull", fx.first); err != nil {
		return s, err
	}
	mirror := filepath.Join(env.dir, "mirror.git")
	if _, err := env.cmd(ctx, nil, fx.gitBin, "clone", "-q", "--bare", fx.first, mirror); err != nil {
		return s, err
	}
	file := filepath.Join(env.dir, "Runfile")
	for i := range reps {
		if err := os.WriteFile(file, remoteBenchRunfile(remoteCommits+1+i), 0o644); err != nil {
			return s, err
		}
		if _, err := env.cmd(ctx, nil, env.runprov, "--store", fx.store, "-q", "add", file); err != nil {
			return s, err
		}
		steps := []struct {
			s    *sample
			name string
			args []string
		}{
			{&s.rpPush, env.runprov, []string{"--store", fx.store, "-q", "push", fx.first}},
			{&s.rpPull, env.runprov, []string{"--store", other, "-q", "pull", fx.first}},
			{&s.gitFetch, fx.gitBin, []string{"-C", fx.export, "fetch", "-q", fx.first, "+refs/heads/main:refs/heads/main"}},
			{&s.gitPush, fx.gitBin, []string{"-C", fx.export, "push", "-q", mirror, "main"}},
		}
		for _, m := range steps {
			if err := fx.timeCmd(ctx, m.s, m.name, m.args...); err != nil {
				return s, err
			}
		}
	}
	return s, nil
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
