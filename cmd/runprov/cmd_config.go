package main

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
)

// storeSettings are the settings `runprov config` may set, with their meaning.
var storeSettings = map[string]string{
	settingRequireApproval: "true: only images approved with `runprov image approve` may run",
}

func newConfigCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config [KEY [VALUE]]",
		Short: "Show or change store settings",
		Long: `With no arguments, list the store's settings. With KEY, print its value.
With KEY and VALUE, set it. Known settings:
  require-approval   true: only images approved with "runprov image approve" may run

Every change (and the values runprov init wrote) is a row of the table
config_events, with who made it and when: see runprov config log.`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			open := a.openRead
			if len(args) == 2 {
				open = a.open
			}
			if _, err := open(cmd.Context()); err != nil {
				return err
			}
			ctx := cmd.Context()
			switch len(args) {
			case 0:
				all, err := a.store.Settings(ctx)
				if err != nil {
					return err
				}
				if a.json {
					return printJSON(a.stdout, all)
				}
				keys := make([]string, 0, len(all))
				for k := range all {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprintf(a.stdout, "%s=%s\n", k, all[k])
				}
				return nil
			case 1:
				v, ok, err := a.store.Setting(ctx, args[0])
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("setting %q: %w", args[0], core.ErrNotFound)
				}
				fmt.Fprintln(a.stdout, v)
				return nil
			}
			key, val := args[0], args[1]
			if _, ok := storeSettings[key]; !ok {
				return usagef("unknown setting %q (known: require-approval)", key)
			}
			if val != "true" && val != "false" {
				return usagef("%s takes true or false", key)
			}
			if err := a.policy.CheckSetting(key, val); err != nil {
				return err
			}
			return a.store.SetSetting(ctx, key, val)
		},
	}
	cmd.AddCommand(newConfigLogCmd(a))
	return cmd
}

func newConfigLogCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "log [KEY]",
		Short: "Show who changed which store setting, when, from what to what",
		Long: `List the config_events rows, oldest first: the settings runprov init wrote
and every change made with runprov config, with time, user, old and new value.
KEY limits the list to one setting.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := a.openRead(cmd.Context()); err != nil {
				return err
			}
			key := ""
			if len(args) == 1 {
				key = args[0]
			}
			evs, err := a.store.ConfigEvents(cmd.Context(), key)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, nonNil(evs))
			}
			tb := newTable(a, "TIME", "KEY", "OLD", "NEW", "USER", "NOTE")
			for _, e := range evs {
				old := "(unset)"
				if e.Old != nil {
					old = *e.Old
				}
				tb.row(a.when(e.At), e.Key, old, e.New, e.User, e.Note)
			}
			return tb.flush()
		},
	}
}
