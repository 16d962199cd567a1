package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/consumer"
)

func newLogCmd(a *app) *cobra.Command {
	var (
		repo  string
		limit int
	)
	cmd := &cobra.Command{
		Use:   "log [COMMIT[:PATH]]",
		Short: "List committed Runfiles, newest first",
		Long: `List the commits of Runfiles, newest first. With COMMIT, only that commit and
the commits before it in its repository; with :PATH, only that Runfile's.

COMMIT is a hash or unique prefix, a repository name (its newest commit),
REPO~N (N commits before it), HEAD or HEAD~N (in --repo, the only repository
or the default one).`,
		Example: `  runprov log
  runprov log --repo cohort
  runprov log cohort:analysis/Runfile
  runprov log HEAD~2 --repo cohort`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			t, err := a.openRead(cmd.Context())
			if err != nil {
				return err
			}
			st := t.store
			if repo != "" {
				if err := repoExists(cmd.Context(), st, repo); err != nil {
					return err
				}
			}
			var rows []core.Commit
			if len(pos) == 1 {
				rows, err = t.consumer.History(cmd.Context(), repo, pos[0], limit)
			} else {
				rows, err = st.Commits(cmd.Context(), core.CommitFilter{Repo: repo, Limit: limit})
			}
			if err != nil {
				return err
			}
			if a.json {
				if rows == nil {
					rows = []core.Commit{}
				}
				return printJSON(a.stdout, rows)
			}
			tb := newTable(a, "COMMIT", "REPO", "PATH", "IMAGE", "DATE", "AUTHOR", "MESSAGE")
			for _, c := range rows {
				commit, digest := shortHash(c.Hash), shortDigest(c.ImageDigest)
				if a.csv {
					commit, digest = c.Hash, c.ImageDigest
				}
				tb.row(commit, c.Repo, c.Path, digest, a.when(c.Time), c.Author, firstLine(c.Message))
			}
			return tb.flush()
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "only this repository (default: all)")
	cmd.Flags().IntVarP(&limit, "limit", "n", 0, "at most this many rows (0: all)")
	return cmd
}

// repoExists returns an error wrapping core.ErrNotFound, naming the
// repositories there are, when the store has no repository name.
func repoExists(ctx context.Context, st consumer.RepoStore, name string) error {
	repos, err := st.Repos(ctx)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(repos))
	for _, r := range repos {
		if r.Name == name {
			return nil
		}
		names = append(names, r.Name)
	}
	have := "the store has none yet"
	if len(names) > 0 {
		have = "the store has: " + strings.Join(names, ", ")
	}
	return fmt.Errorf("log: no repository named %q: %w (%s; runprov log lists all; runprov add --repo %s creates it)", name, core.ErrNotFound, have, name)
}
