package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/history"
)

// completionLimit bounds how many runs or commits a completion offers.
const completionLimit = 500

// addCompletions gives the commands of root shell completion of what the
// store holds: run ids, commits, repositories, image digests, tags, and
// the fixed values of flags such as --format.
func addCompletions(root *cobra.Command, a *app) {
	runArgs := map[string]int{"show": 1, "logs": 1, "export": 1, "reproduce": 1, "diff": 2, "tag": 1, "verify": 1, "report": -1, "exec-prepared": 1}
	commitArgs := map[string]bool{"run": true, "cat": true, "log": true}
	imageArgs := map[string]bool{"inspect": true, "verify": true, "approve": true, "revoke": true, "rm": true, "unpack": true, "log": true, "approvals": true, "sbom": true, "check": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		name := c.Name()
		inImage := c.HasParent() && c.Parent().Name() == "image"
		switch {
		case inImage && imageArgs[name]:
			c.ValidArgsFunction = a.completeFirst(a.imageDigests)
		case inImage:
		case runArgs[name] != 0 && c.Parent() == root:
			c.ValidArgsFunction = a.completeRuns(runArgs[name])
		case commitArgs[name] && c.Parent() == root:
			c.ValidArgsFunction = a.completeFirst(a.commitNames)
		}
		a.completeFlags(c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completeFlags registers the completion of c's own flags.
func (a *app) completeFlags(c *cobra.Command) {
	fixed := func(vals ...string) cobra.CompletionFunc {
		return cobra.FixedCompletions(vals, cobra.ShellCompDirectiveNoFileComp)
	}
	formats := map[string][]string{"export": {"json", "intoto", "prov", "rocrate"}, "trace": {"text", "json", "dot", "prov"}}
	byFlag := map[string]cobra.CompletionFunc{
		"repo":     a.completeWith(a.repoNames),
		"tag":      a.completeWith(a.tagNames),
		"image":    a.completeWith(a.imageDigests),
		"commit":   a.completeWith(a.commitHashes),
		"runtime":  fixed("runc", "ch-run"),
		"executor": fixed("local", "slurm"),
		"status":   fixed("queued", "running", "succeeded", "failed", "aborted"),
		"pull":     fixed("missing", "never"),
	}
	if vals, ok := formats[c.Name()]; ok {
		byFlag["format"] = fixed(vals...)
	}
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if fn, ok := byFlag[f.Name]; ok && (f.Name != "tag" || c.Name() == "runs") {
			c.RegisterFlagCompletionFunc(f.Name, fn)
		}
	})
}

// lister returns candidates, each "VALUE" or "VALUE\tdescription".
type lister func(ctx context.Context, st *sqlite.Store, prefix string) []string

// completionStore opens the store read-only and quietly for a completion;
// nil when there is none.
func (a *app) completionStore(ctx context.Context) *sqlite.Store {
	if a.store != nil {
		return a.store
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(a.storeDir)
	if err != nil {
		return nil
	}
	st, err := openSQLite(ctx, a, dir, true)
	if err != nil {
		return nil
	}
	a.store = st // execute closes it
	return st
}

func (a *app) complete(cmd *cobra.Command, l lister, prefix string) []string {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	st := a.completionStore(ctx)
	if st == nil {
		return nil
	}
	var out []string
	for _, c := range l(ctx, st, prefix) {
		if v, _, _ := strings.Cut(c, "\t"); strings.HasPrefix(v, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// completeWith completes a flag's value.
func (a *app) completeWith(l lister) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		return a.complete(cmd, l, prefix), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeFirst completes a command's first argument; run also takes a
// Runfile path, so something that looks like a path completes as files.
func (a *app) completeFirst(l lister) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if cmd.Name() == "run" && strings.ContainsAny(prefix, "/.") {
			return nil, cobra.ShellCompDirectiveDefault
		}
		return a.complete(cmd, l, prefix), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeRuns completes up to n run arguments (n < 0: any number).
func (a *app) completeRuns(n int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		if n >= 0 && len(args) >= n || cmd.Name() == "tag" && len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return a.complete(cmd, a.runIDs, prefix), cobra.ShellCompDirectiveNoFileComp
	}
}

func (a *app) runIDs(ctx context.Context, st *sqlite.Store, _ string) []string {
	runs, err := st.Runs(ctx, core.RunFilter{Limit: completionLimit})
	if err != nil {
		return nil
	}
	out := []string{"last\tthe newest run", "last~1\tthe run before it"}
	for _, r := range runs {
		out = append(out, r.ID+"\t"+string(r.Status)+" "+history.TermTime(r.Created)+" "+r.Repo+":"+r.Path)
	}
	return out
}

func (a *app) commitNames(ctx context.Context, st *sqlite.Store, prefix string) []string {
	out := a.repoNames(ctx, st, prefix)
	if len(out) > 0 {
		out = append(out, "HEAD\tthe newest commit")
	}
	return append(out, a.commitHashes(ctx, st, prefix)...)
}

func (a *app) commitHashes(ctx context.Context, st *sqlite.Store, _ string) []string {
	rows, err := st.Commits(ctx, core.CommitFilter{Limit: completionLimit})
	if err != nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, c := range rows {
		if !seen[c.Hash] {
			seen[c.Hash] = true
			out = append(out, c.Hash+"\t"+c.Repo+":"+c.Path+" "+firstLine(c.Message))
		}
	}
	return out
}

func (a *app) repoNames(ctx context.Context, st *sqlite.Store, _ string) []string {
	repos, err := st.Repos(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range repos {
		out = append(out, r.Name+"\trepository")
	}
	return out
}

func (a *app) tagNames(ctx context.Context, st *sqlite.Store, _ string) []string {
	tags, _ := st.Tags(ctx)
	return tags
}

func (a *app) imageDigests(ctx context.Context, st *sqlite.Store, _ string) []string {
	recs, err := st.ImageRecords(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Digest+"\t"+r.Ref)
	}
	return out
}
