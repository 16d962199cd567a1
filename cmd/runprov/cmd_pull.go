package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/consumer"
)

// remoteHelp is the part of push, pull and add --from's help about URLs and
// credentials.
const remoteHelp = `
URL is a git remote: file:///path or a plain path, https://host/repo.git
(smart HTTP), ssh://user@host/repo.git or user@host:repo.git, git://host/repo.
The URL is used for this call only: it is never written to the store, to the
repository's .git/config or to a log line, and error messages show it without
user, password or query.

Credentials are read from the environment when the command runs:
  HTTP(S)  RUNPROV_GIT_TOKEN, sent as the password of HTTP basic auth for the
           user in the URL, else RUNPROV_GIT_USER, else "runprov"; without a
           token, a user:password in the URL; else ~/.netrc ($NETRC).
  SSH      the key file given with --ssh-key (passphrase from
           RUNPROV_SSH_PASSPHRASE), else ssh-agent (SSH_AUTH_SOCK); host keys
           are checked against ~/.ssh/known_hosts.
file:// and plain-path remotes run git's git-upload-pack/git-receive-pack.`

// runfileHelp says which files of fetched commits are Runfiles.
const runfileHelp = `
Which files are Runfiles: in every commit the remote adds, a commit made by
runprov add names its Runfile in a "Runprov-Runfile: PATH" trailer, and
exactly the paths its trailers name are indexed, whatever their names. In
other commits each file the commit adds or changes is a Runfile when the
repository already indexes its path, or when it matches a --path GLOB
(repeatable; default "Runfile" and "*.Runfile"). A GLOB without "/" matches
the file name in any directory; one with "/" matches the whole path
(path.Match: "*" stays within a directory), e.g. --path 'analysis/*/Runfile'.
Without --path, a file is also indexed when its first instruction is
FROM NAME@sha256:DIGEST and it is a valid Runfile. Other files travel with
the history but are not indexed. Every Runfile selected by trailer, path or
glob is validated as runprov add validates it and indexed with its commit;
one invalid Runfile in any new commit refuses the whole operation, naming the
commit and path, and the store is left unchanged. runprov reindex indexes
what an earlier pull left out.`

func newPullCmd(a *app) *cobra.Command {
	var (
		req    consumer.PullRequest
		sshKey string
	)
	cmd := &cobra.Command{
		Use:   "pull URL",
		Short: "Fetch a branch from a git remote and fast-forward a repo to it",
		Long: `Fetch --branch (default main) from the git remote URL and fast-forward the
repository named by --repo (default "default") to it, creating the repository
when it does not exist. Prints the new head.

runprov only fast-forwards: when the repository has commits the remote lacks
and the remote has commits the repository lacks, the pull is refused (pull
into a new repo with --repo NAME, or reconcile with git and push). When only
the repository has new commits nothing is pulled.
` + runfileHelp + `
` + remoteHelp,
		Args: exactArgs("pull", "from which remote? give its URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			req.Remote = core.Remote{URL: args[0], SSHKey: sshKey}
			res, err := t.consumer.Pull(cmd.Context(), req)
			if err != nil {
				return err
			}
			return printPull(a, res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Repo, "repo", core.DefaultRepo, "repository to fast-forward")
	f.StringVar(&req.Branch, "branch", core.DefaultBranch, "branch on the remote")
	f.StringArrayVar(&req.Paths, "path", nil, `GLOB selecting Runfiles (repeatable; default "Runfile" and "*.Runfile")`)
	f.StringVar(&sshKey, "ssh-key", "", "private key file for ssh:// remotes (default: ssh-agent)")
	return cmd
}

// printPull prints the head on stdout (or the result as JSON) and a summary
// on stderr.
func printPull(a *app, res consumer.PullResult) error {
	if a.json {
		if res.Indexed == nil {
			res.Indexed = []core.Commit{}
		}
		return printJSON(a.stdout, res)
	}
	switch {
	case res.Ahead > 0:
		a.log.Info(fmt.Sprintf("nothing to pull: repo %q has %d commit(s) the remote lacks (push them with runprov push)", res.Repo, res.Ahead))
	case res.Old == res.Head:
		a.log.Info(fmt.Sprintf("repo %q is up to date", res.Repo))
	default:
		old := shortHash(res.Old)
		if old == "" {
			old = "(new repo)"
		}
		a.log.Info(fmt.Sprintf("repo %q fast-forwarded %s..%s: %d commit(s), %d Runfile(s) indexed", res.Repo, old, shortHash(res.Head), res.Commits, len(res.Indexed)))
	}
	fmt.Fprintln(a.stdout, res.Head)
	return nil
}
