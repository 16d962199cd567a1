package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite"
)

// SettingRequireApproval makes the producer refuse images nobody approved.
const settingRequireApproval = "require-approval"

func newInitCmd(a *app) *cobra.Command {
	var tre bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a store (or upgrade an existing one)",
		Long: `Create the store directory given by --store (default $RUNPROV_STORE, else
$XDG_DATA_HOME/runprov, else ~/.local/share/runprov) with its SQLite database.
Running init on an existing store upgrades its schema and changes nothing else.

--tre makes a store for a Trusted Research Environment: require-approval is on,
so only images approved with "runprov image approve" may run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.loadPolicy(); err != nil {
				return err
			}
			dir, err := filepath.Abs(a.storeDir)
			if err != nil {
				return err
			}
			settings := map[string]string{settingRequireApproval: "false"}
			if tre {
				settings[settingRequireApproval] = "true"
			}
			st, created, err := sqlite.Init(cmd.Context(), dir, settings, sqlite.Options{Logger: a.log})
			if err != nil {
				return err
			}
			a.store = st
			got, err := st.Settings(cmd.Context())
			if err != nil {
				return err
			}
			if tre && got[settingRequireApproval] != "true" {
				return fmt.Errorf("%w: store %s exists without --tre; turn approval on with: runprov config %s true", core.ErrExists, dir, settingRequireApproval)
			}
			if a.json {
				return printJSON(a.stdout, map[string]any{"store": dir, "created": created, "settings": got})
			}
			switch {
			case a.quiet:
			case created:
				fmt.Fprintf(a.stderr, "Initialised runprov store in %s\n", dir)
			default:
				fmt.Fprintf(a.stderr, "Store %s exists; schema is up to date\n", dir)
			}
			fmt.Fprintln(a.stdout, dir)
			return nil
		},
	}
	cmd.Flags().BoolVar(&tre, "tre", false, "require approval of every image before it may run")
	return cmd
}
