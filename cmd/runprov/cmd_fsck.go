package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/consumer"
)

func newFsckCmd(a *app) *cobra.Command {
	var (
		repair, signHead bool
		repo             string
	)
	cmd := &cobra.Command{
		Use:   "fsck [--repair [--repo NAME]] [--sign-head]",
		Short: "Verify the store; exit 0 only when everything holds",
		Long: `Verify everything the store keeps: every repository tarball's sha256 and size,
that each repository opens from its tarball and that every object of it reads
back (each pack read entry by entry, not trusting its index), and that every
commit row agrees with git (the commit is on the branch, the Runfile's blob,
author, time and message match, and it still parses to the recorded image),
plus the checks of every other component (images, runs). Problems are listed
on stdout; the exit status is 0 when there are none and 125 otherwise.

With --repair, a repository whose object store is damaged is first rebuilt
from every object that can still be read (all of them, when only a pack index
is wrong) and stored in place of the old tarball; its branch stays where it
was. No commit row is ever removed: each commit whose Runfile could not be
recovered is listed as lost. --repo limits the repair to one repository.
The checks then run on the repaired store.

Every finished run (with its steps and files), image event and config event
is in a hash chain (table chain); fsck derives it again and names each entry
edited, deleted, inserted or reordered since it was written. With
--sign-head, when everything holds, the chain's head is signed with the site
policy's sign_key and kept in table chain_heads; later runs of fsck check
those signatures, so a chain rewritten from its start is found too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if repo != "" && !repair {
				return usagef("--repo goes with --repair")
			}
			return a.fsck(cmd.Context(), repair, repo, signHead)
		},
	}
	cmd.Flags().BoolVar(&repair, "repair", false, "rebuild damaged repositories from every object that can still be read")
	cmd.Flags().StringVar(&repo, "repo", "", "with --repair: only this repository")
	cmd.Flags().BoolVar(&signHead, "sign-head", false, "when the store holds, sign the chain head with the site policy's sign_key")
	return cmd
}

// fsck repairs when asked, runs every checker and prints what they found;
// with signHead, it signs the chain head of a store that holds.
func (a *app) fsck(ctx context.Context, repair bool, repo string, signHead bool) error {
	t, err := a.open(ctx)
	if err != nil {
		return err
	}
	var repaired []consumer.RepairResult
	if repair {
		if repaired, err = t.consumer.Repair(ctx, repo); err != nil {
			return err
		}
		if !a.json {
			printRepairs(a.stdout, repaired)
		}
	}
	problems, err := a.check(ctx, t)
	if err != nil {
		return err
	}
	if a.json {
		out := map[string]any{"ok": len(problems) == 0, "problems": problems}
		if repair {
			out["repaired"] = repaired
		}
		if err := printJSON(a.stdout, out); err != nil {
			return err
		}
	} else {
		for _, p := range problems {
			fmt.Fprintf(a.stdout, "%s: %s\n", p.Where, p.What)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: fsck found %d problem(s)", core.ErrCorrupt, len(problems))
	}
	if !a.json {
		fmt.Fprintf(a.stderr, "fsck: store %s holds\n", a.store.Layout().Root)
	}
	if !signHead {
		return nil
	}
	h, err := signChainHead(ctx, a.store, a.policy)
	if err != nil {
		return err
	}
	if !a.json && h.Seq > 0 {
		fmt.Fprintf(a.stderr, "fsck: signed chain head %d (%s) with key %s\n", h.Seq, h.SHA256, h.KeyID)
	}
	return nil
}

// check runs fsck's checkers in order and the signed heads' check.
func (a *app) check(ctx context.Context, t *components) ([]core.Problem, error) {
	problems := []core.Problem{}
	report := func(p core.Problem) { problems = append(problems, p) }
	for _, c := range t.checkers {
		a.log.Debug("checking", "component", c.name)
		if err := c.Check(ctx, report); err != nil {
			return nil, fmt.Errorf("fsck %s: %w", c.name, err)
		}
	}
	if ok, err := checkSignedHeads(ctx, a.store, a.policy, report); err != nil {
		return nil, fmt.Errorf("fsck signed heads: %w", err)
	} else if !ok {
		a.log.Warn("the chain has signed heads but the site policy's sign_key cannot be read here: their signatures were not checked")
	}
	return problems, nil
}

// printRepairs says, per repository, what --repair found and did.
func printRepairs(w io.Writer, rs []consumer.RepairResult) {
	for _, r := range rs {
		if !r.Rebuilt {
			fmt.Fprintf(w, "repair: repo %q: object store whole (%d objects), nothing to do\n", r.Repo, r.Scan.Objects)
			continue
		}
		fmt.Fprintf(w, "repair: repo %q: rebuilt from %d objects that read back (%d were missing from their pack index); %d commit Runfile(s) kept, %d lost\n",
			r.Repo, r.Scan.Objects, r.Scan.Unindexed, r.Kept, len(r.Lost))
		for _, u := range r.Scan.Problems {
			fmt.Fprintf(w, "repair: repo %q: found: %s\n", r.Repo, u)
		}
		for _, l := range r.Lost {
			fmt.Fprintf(w, "repair: repo %q: LOST commit %s %s: %s (its index row is kept)\n", r.Repo, l.Hash, l.Path, l.Why)
		}
	}
}
