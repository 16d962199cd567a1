package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/consumer"
)

func newReindexCmd(a *app) *cobra.Command {
	var repo string
	cmd := &cobra.Command{
		Use:   "reindex [--repo NAME]",
		Short: "Rebuild a repo's commit index from its git history",
		Long: `Walk the git history of the repository named by --repo (default: every
repository) and index the Runfiles the commit index lacks, selected as a pull
with the default globs selects them: the paths a commit's Runprov-Runfile
trailers name, else paths already indexed, files named Runfile or *.Runfile,
and files whose content is a valid Runfile pinning its image by digest.
Rows already indexed are kept; running it again changes nothing. Files those
rules select that are not valid Runfiles are listed on stderr and skipped.

Prints the rows it added (as runprov log does), oldest first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			res, err := t.consumer.Reindex(cmd.Context(), repo)
			if err != nil {
				return err
			}
			return printReindex(a, res)
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "only this repository (default: all)")
	return cmd
}

// printReindex prints the added rows on stdout (or every result as JSON)
// and a summary per repository on stderr.
func printReindex(a *app, res []consumer.ReindexResult) error {
	for _, r := range res {
		for _, s := range r.Skipped {
			a.log.Warn(fmt.Sprintf("repo %q: skipped: %s", r.Repo, s))
		}
		a.log.Info(fmt.Sprintf("repo %q: %d commit(s) walked, %d Runfile(s) indexed", r.Repo, r.Commits, len(r.Indexed)))
	}
	if a.json {
		if res == nil {
			res = []consumer.ReindexResult{}
		}
		for i := range res {
			if res[i].Indexed == nil {
				res[i].Indexed = []core.Commit{}
			}
			if res[i].Skipped == nil {
				res[i].Skipped = []string{}
			}
		}
		return printJSON(a.stdout, res)
	}
	tb := newTable(a, "COMMIT", "REPO", "PATH", "IMAGE", "MESSAGE")
	for _, r := range res {
		for _, c := range r.Indexed {
			commit, digest := shortHash(c.Hash), shortDigest(c.ImageDigest)
			if a.csv {
				commit, digest = c.Hash, c.ImageDigest
			}
			tb.row(commit, c.Repo, c.Path, digest, firstLine(c.Message))
		}
	}
	return tb.flush()
}
