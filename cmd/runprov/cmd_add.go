package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/consumer"
)

// addFlags are the flags of runprov add.
type addFlags struct {
	message, repo  string
	paths          []string
	from, ref, ssh string
	repoGiven      bool
}

func newAddCmd(a *app) *cobra.Command {
	var af addFlags
	cmd := &cobra.Command{
		Use:   "add RUNFILE | add --from URL [--ref REF] [--path GLOB]...",
		Short: "Validate a Runfile and commit it; prints the commit hash",
		Long: `Validate RUNFILE and commit it into the repository named by --repo, at the path
given by --path (default: the file's base name), and say which repository on
stderr. Without --repo: the repository named after the Runfile's directory
when there is one; else "default", unless "default" already holds a Runfile
at that path pinning another image name (another analysis): then a new
repository named after the directory, so that unrelated analyses do not
share one history.

The repository's .git is kept, as a tarball, in the store's database; the
commit and its index row are stored in one transaction, so a failure changes
nothing.

RUNFILE "-" reads standard input (then --path is required; without --repo it
goes to "default").
The commit message ends in a "Runprov-Runfile: PATH" git trailer, so that a
pull elsewhere indexes the Runfile whatever its path.
Adding bytes identical to what the repository holds at that path makes no new
commit and prints the commit that recorded them.

The author is taken from GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL when set, else
from the user running runprov.

add --from URL consumes the Runfiles of a git remote instead: the history at
--ref (a branch, a tag or a refs/... name; default: the remote's HEAD) becomes
the repository's, as if pulled, so that a later runprov pull fast-forwards it
and commit hashes are the same at both sites. Into a repository that already
has commits it fast-forwards, or is refused when the histories differ. Prints
the new head.
` + runfileHelp + `
` + remoteHelp,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			af.repoGiven = cmd.Flags().Changed("repo")
			if af.from != "" {
				return a.addFrom(cmd.Context(), af, args)
			}
			return a.addFile(cmd.Context(), af, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&af.message, "message", "m", "", `commit message (default "Add PATH" or "Update PATH")`)
	f.StringVar(&af.repo, "repo", "", "repository to commit to (default: named after the directory, or \"default\", as above)")
	f.StringArrayVar(&af.paths, "path", nil, "path of the Runfile inside the repository (default: the file's base name); with --from, a GLOB selecting Runfiles (repeatable)")
	f.StringVar(&af.from, "from", "", "consume the Runfiles of this git remote URL")
	f.StringVar(&af.ref, "ref", "", "with --from: branch, tag or refs/... name (default: the remote's HEAD)")
	f.StringVar(&af.ssh, "ssh-key", "", "with --from: private key file for ssh:// remotes (default: ssh-agent)")
	return cmd
}

// addFrom consumes the Runfiles of a git remote (add --from).
func (a *app) addFrom(ctx context.Context, af addFlags, args []string) error {
	if len(args) > 0 {
		return usagef("add: give either RUNFILE or --from URL, not both")
	}
	if af.message != "" {
		return usagef("add --from keeps the remote's commits and their messages; -m does not apply")
	}
	t, err := a.open(ctx)
	if err != nil {
		return err
	}
	res, err := t.consumer.AddFrom(ctx, consumer.AddFromRequest{
		Repo: af.repo, Remote: core.Remote{URL: af.from, SSHKey: af.ssh}, Ref: af.ref, Paths: af.paths,
	})
	if err != nil {
		return err
	}
	return printPull(a, res)
}

// addFile commits the Runfile args[0] ("-": standard input) and prints
// the commit.
func (a *app) addFile(ctx context.Context, af addFlags, args []string) error {
	switch {
	case len(args) == 0:
		return usagef("add: give a RUNFILE, or --from URL")
	case af.ref != "" || af.ssh != "":
		return usagef("add: --ref and --ssh-key go with --from URL")
	case len(af.paths) > 1:
		return usagef("add RUNFILE: give --path once")
	}
	var inPath string
	if len(af.paths) == 1 {
		inPath = af.paths[0]
	}
	src := args[0]
	var (
		data []byte
		err  error
	)
	if src == "-" {
		if inPath == "" {
			return usagef("add -: give the path in the repo with --path")
		}
		data, err = io.ReadAll(io.LimitReader(a.stdin, 1<<20+1))
		src = "<stdin>"
	} else {
		data, err = os.ReadFile(src)
		if inPath == "" {
			inPath = filepath.Base(src)
		}
	}
	if err != nil {
		return fmt.Errorf("read runfile: %w", err)
	}
	t, err := a.open(ctx)
	if err != nil {
		return err
	}
	repo := af.repo
	if !af.repoGiven {
		repo = ""
	}
	res, err := a.addRunfile(ctx, t, src, inPath, repo, af.message, data)
	if err != nil {
		return err
	}
	if a.json {
		return printJSON(a.stdout, map[string]any{"commit": res.Commit, "unchanged": res.Unchanged})
	}
	fmt.Fprintln(a.stdout, res.Hash)
	return nil
}

// addRunfile commits data, read from src, at inPath in repo; with repo ""
// the consumer chooses it (ChooseRepo). It says on stderr where it went.
func (a *app) addRunfile(ctx context.Context, t *components, src, inPath, repo, message string, data []byte) (consumer.AddResult, error) {
	cons := t.consumer
	inPath = filepath.ToSlash(inPath)
	why := ""
	if repo == "" && src != "<stdin>" {
		abs, err := filepath.Abs(src)
		if err != nil {
			return consumer.AddResult{}, err
		}
		if repo, why, err = cons.ChooseRepo(ctx, filepath.Base(filepath.Dir(abs)), inPath, data); err != nil {
			return consumer.AddResult{}, err
		}
	}
	res, err := cons.Add(ctx, consumer.AddRequest{
		Repo: repo, Path: inPath, Source: src, Data: data, Message: message, Author: author(),
	})
	if err != nil {
		return res, err
	}
	switch {
	case res.Unchanged:
		a.log.Info("unchanged: the repo already holds these bytes", "repo", res.Repo, "path", res.Path, "commit", shortHash(res.Hash))
	case !a.quiet:
		fmt.Fprintf(a.stderr, "runprov: committed %s to repo %s: %s (runprov run %s:%s runs its newest version)\n", res.Path, res.Repo, shortHash(res.Hash), res.Repo, res.Path)
	}
	if why != "" && !a.quiet {
		fmt.Fprintf(a.stderr, "runprov: a new repo, as %s; --repo %s would have put it there\n", why, core.DefaultRepo)
	}
	return res, nil
}

// author is who commits: git's author variables when set, else the user.
func author() core.Signature {
	name, email := os.Getenv("GIT_AUTHOR_NAME"), os.Getenv("GIT_AUTHOR_EMAIL")
	if name == "" || email == "" {
		uname := "runprov"
		if u, err := user.Current(); err == nil {
			uname = u.Username
		}
		host, _ := os.Hostname()
		if name == "" {
			name = uname
		}
		if email == "" {
			email = uname + "@" + host
		}
	}
	return core.Signature{Name: name, Email: email, When: time.Now()}
}
