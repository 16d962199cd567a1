package main

import (
	"github.com/spf13/cobra"
)

func newCatCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "cat COMMIT[:PATH]",
		Short: "Print a Runfile as committed, byte for byte",
		Long: `Print the Runfile recorded at COMMIT, read from the git repository kept in the
store. COMMIT is a hash or any unique prefix of one, a repository name (its
newest commit), REPO~N, HEAD or HEAD~N. :PATH names any file of that commit's
tree; without it, a hash means the Runfile the commit records and a
repository name the repository's one Runfile.`,
		Example: `  runprov cat 3f2a1c
  runprov cat cohort:analysis/Runfile
  runprov cat HEAD~1`,
		Args: exactArgs("cat", "which commit? (runprov log lists them; a repository name means its newest)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.openRead(cmd.Context())
			if err != nil {
				return err
			}
			data, row, err := t.consumer.Cat(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, map[string]any{"commit": row, "runfile": string(data)})
			}
			_, err = a.stdout.Write(data)
			return err
		},
	}
}
