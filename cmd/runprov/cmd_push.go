package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/consumer"
)

func newPushCmd(a *app) *cobra.Command {
	var (
		req    consumer.PushRequest
		sshKey string
	)
	cmd := &cobra.Command{
		Use:   "push URL",
		Short: "Send a repo's commits to a branch of a git remote",
		Long: `Push the repository named by --repo (default "default") to --branch (default
main) of the git remote URL. Prints the pushed head. The store is not changed.

A remote branch holding commits the repository lacks is refused (pull first);
--force overwrites it.
` + remoteHelp,
		Args: exactArgs("push", "to which remote? give its URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			req.Remote = core.Remote{URL: args[0], SSHKey: sshKey}
			res, err := t.consumer.Push(cmd.Context(), req)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, res)
			}
			if res.UpToDate {
				a.log.Info(fmt.Sprintf("remote branch %s is up to date", res.Branch))
			} else {
				old := shortHash(res.Old)
				if old == "" {
					old = "(new branch)"
				}
				a.log.Info(fmt.Sprintf("pushed repo %q to branch %s: %s..%s", res.Repo, res.Branch, old, shortHash(res.Head)))
			}
			fmt.Fprintln(a.stdout, res.Head)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Repo, "repo", core.DefaultRepo, "repository to push")
	f.StringVar(&req.Branch, "branch", core.DefaultBranch, "branch on the remote")
	f.BoolVar(&req.Force, "force", false, "overwrite a remote branch that has commits the repository lacks")
	f.StringVar(&sshKey, "ssh-key", "", "private key file for ssh:// remotes (default: ssh-agent)")
	return cmd
}
