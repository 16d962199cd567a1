package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/runfile"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of runprov, its store schema and Runfile format",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo()
			if a.json {
				return printJSON(a.stdout, v)
			}
			fmt.Fprintln(a.stdout, versionLine(v))
			return nil
		},
	}
}

// versionInfo is what runprov version prints.
func versionInfo() map[string]any {
	v := map[string]any{
		"version":        version,
		"schema":         sqlite.SchemaVersion(),
		"runfile_format": runfile.Version,
		"go":             runtime.Version(),
		"platform":       runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v["revision"] = s.Value
			}
		}
	}
	return v
}

// versionLine is the version as runprov version and runprov --version
// print it.
func versionLine(v map[string]any) string {
	return fmt.Sprintf("runprov %s (store schema %d, Runfile format %d, %s, %s)",
		v["version"], v["schema"], v["runfile_format"], v["go"], v["platform"])
}
