package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
)

func newFsckCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "fsck",
		Short: "Verify the store; exit 0 only when everything holds",
		Long: `Verify everything the store keeps: every repository tarball's sha256 and size,
that each repository opens from its tarball, and that every commit row agrees
with git (the commit is on the branch, the Runfile's blob, author, time and
message match, and it still parses to the recorded image), plus the checks of
every other component (images, runs). Problems are listed on stdout; the exit
status is 0 when there are none and 125 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			problems := []core.Problem{}
			report := func(p core.Problem) { problems = append(problems, p) }
			checkers := append(core.All[core.Checker](t.Drivers), core.All[core.Checker](t.Plugins)...)
			for _, c := range checkers {
				a.log.Debug("checking", "component", c.Name())
				if err := c.Check(cmd.Context(), report); err != nil {
					return fmt.Errorf("fsck %s: %w", c.Name(), err)
				}
			}
			if a.json {
				if err := printJSON(a.stdout, map[string]any{"ok": len(problems) == 0, "problems": problems}); err != nil {
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
			return nil
		},
	}
}
