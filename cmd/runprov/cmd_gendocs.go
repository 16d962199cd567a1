package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manDate is the date the man pages carry. It is fixed so that generating
// them twice gives the same bytes and a test can tell stale pages.
var manDate = time.Date(2026, time.December, 1, 0, 0, 0, 0, time.UTC)

// newGenDocsCmd writes the CLI reference (Markdown and man pages) from the
// command tree itself; `make man` calls it. Hidden: it is for packaging.
func newGenDocsCmd(a *app) *cobra.Command {
	var mdDir, manDir string
	cmd := &cobra.Command{
		Use:    "gen-docs",
		Short:  "Write the CLI reference as Markdown and man pages",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if mdDir == "" && manDir == "" {
				return usagef("gen-docs: give --markdown DIR, --man DIR or both")
			}
			return genDocs(cmd.Root(), mdDir, manDir)
		},
	}
	cmd.Flags().StringVar(&mdDir, "markdown", "", "write one Markdown page per command into this directory")
	cmd.Flags().StringVar(&manDir, "man", "", "write one man page (section 1) per command into this directory")
	return cmd
}

// genDocs writes the reference of root's tree. The --store default depends
// on the environment of whoever generates; the pages show the rule instead.
func genDocs(root *cobra.Command, mdDir, manDir string) error {
	root.DisableAutoGenTag = true
	// cobra adds "completion" when a command runs; the reference has it too.
	root.InitDefaultCompletionCmd()
	if f := root.PersistentFlags().Lookup("store"); f != nil {
		f.DefValue = "$XDG_DATA_HOME/runprov or ~/.local/share/runprov"
	}
	for _, d := range []string{mdDir, manDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if mdDir != "" {
		if err := doc.GenMarkdownTree(root, mdDir); err != nil {
			return fmt.Errorf("markdown reference: %w", err)
		}
	}
	if manDir != "" {
		hdr := &doc.GenManHeader{Title: "RUNPROV", Section: "1", Source: "runprov", Manual: "runprov manual", Date: &manDate}
		if err := doc.GenManTree(root, hdr, manDir); err != nil {
			return fmt.Errorf("man pages: %w", err)
		}
	}
	return nil
}
