package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
)

func newTagCmd(a *app) *cobra.Command {
	var remove bool
	cmd := &cobra.Command{
		Use:   "tag RUN [NAME...] [--rm]",
		Short: "Tag a run, or take tags away (--rm); list its tags",
		Long: `Give RUN the tags NAME..., or take them away with --rm; without NAME, print
the run's tags. A tag is 1-64 of A-Z a-z 0-9 . _ - and may be on many runs;
runprov runs --tag NAME lists them. RUN is a run id, a unique prefix, last or
last~N.

Tags are kept beside the run's record: show, runs --json and the exports
print them. Each tag and untag is an event in the store's hash chain (table
run_events; view run_tags), so fsck finds one edited or deleted behind
runprov's back. A signed run record does not cover tags: they may change
after the run was signed.`,
		Example: `  runprov tag last paper-v1
  runprov tag 3f2a1c --rm paper-v1
  runprov runs --tag paper-v1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("tag: which run? (runprov runs lists them)")
			}
			if remove && len(args) == 1 {
				return usagef("tag --rm: which tag? like: runprov tag %s --rm NAME", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			names := args[1:]
			var t *components
			var err error
			if len(names) == 0 {
				t, err = a.openRead(ctx)
			} else {
				t, err = a.open(ctx)
			}
			if err != nil {
				return err
			}
			r, err := t.store.Run(ctx, args[0])
			if err != nil {
				return err
			}
			for _, name := range names {
				changed, err := t.store.TagRun(ctx, r.ID, name, remove)
				if err != nil {
					return err
				}
				if !changed && !a.quiet {
					state := "has"
					if remove {
						state = "does not have"
					}
					fmt.Fprintf(a.stderr, "runprov: run %s already %s tag %s\n", core.ShortRunID(r.ID), state, name)
				}
			}
			if len(names) > 0 {
				if r, err = t.store.Run(ctx, r.ID); err != nil {
					return err
				}
			}
			if a.json {
				tags := r.Tags
				if tags == nil {
					tags = []string{}
				}
				return printJSON(a.stdout, map[string]any{"run": r.ID, "tags": tags})
			}
			if len(names) == 0 || !a.quiet {
				fmt.Fprintln(a.stdout, strings.Join(r.Tags, " "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&remove, "rm", false, "take the tags away")
	return cmd
}
