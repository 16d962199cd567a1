package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/history"
)

func newExportCmd(a *app) *cobra.Command {
	var (
		format string
		out    string
		signed bool
		force  bool
	)
	cmd := &cobra.Command{
		Use:   "export RUN --format json|intoto|prov|rocrate [-o FILE]",
		Short: "Export a run's provenance in a standard format",
		Long: `Export the record of a run:

  json     the record as runprov show --json prints it
  intoto   an in-toto Statement v1 whose subjects are the output files (sha256),
           with a SLSA Provenance v1 predicate: the Runfile commit, the image
           and the inputs as resolved dependencies, the run's parameters,
           runprov as the builder, start and end times
  prov     W3C PROV-JSON: entities for the Runfile, image, inputs and outputs,
           an activity for the run, agents for the user and runprov
  rocrate  a directory (-o DIR, required) that is an RO-Crate 1.1 following the
           Process Run Crate profile; inputs and outputs are referenced by
           their host path and sha256, not copied

The JSON formats go to stdout, or to FILE with -o. -o never overwrites a
file, nor writes a crate into a directory that is not empty, unless --force. With --signed (intoto only)
the signed record is printed instead: the DSSE envelope whose payload is the
in-toto statement as it was when the run finished and was signed (see
runprov verify).`,
		Args: exactArgs("export", "which run? (runprov runs lists them; last is the newest)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "json", "intoto", "prov":
			case "rocrate":
				if out == "" {
					return usagef("--format rocrate writes a directory: name it with -o DIR")
				}
			case "":
				return usagef("--format is required: json, intoto, prov or rocrate")
			default:
				return usagef("--format %q: want json, intoto, prov or rocrate", format)
			}
			if signed && format != "intoto" {
				return usagef("--signed goes with --format intoto: the signed record is an in-toto statement")
			}
			return a.export(cmd.Context(), args[0], format, out, signed, force)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "json, intoto, prov or rocrate")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file (rocrate: this new directory)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite the -o file (rocrate: write over the directory's crate files)")
	cmd.Flags().BoolVar(&signed, "signed", false, "with --format intoto: the signed record, a DSSE envelope")
	return cmd
}

// export writes run's record in format to out (stdout for ""), or its
// signed envelope.
func (a *app) export(ctx context.Context, run, format, out string, signed, force bool) error {
	rec, err := loadRecord(ctx, a, run)
	if err != nil {
		return err
	}
	opts := history.ExportOptions{Version: version}
	var doc any
	switch {
	case signed:
		if doc, err = signedEnvelope(rec); err != nil { // sign.go
			return err
		}
	case format == "json":
		doc = rec
	case format == "intoto":
		if doc, err = history.InToto(rec, opts); err != nil {
			return err
		}
	case format == "prov":
		doc = history.Prov(rec, opts)
	case format == "rocrate":
		files, err := history.ROCrate(rec, runfileText(ctx, a, &rec.Run), opts)
		if err != nil {
			return err
		}
		if err := history.WriteCrate(out, files, force); err != nil {
			return err
		}
		a.log.Info("wrote RO-Crate", "dir", out, "files", len(files))
		return nil
	}
	if out == "" {
		return printJSON(a.stdout, doc)
	}
	return writeNewJSON(out, doc, force)
}

// writeNewJSON writes doc to the file out, which must not exist unless
// force.
func writeNewJSON(out string, doc any, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(out, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		return advise(fmt.Errorf("export: %w: %s", core.ErrExists, out), adviceExportExists, "")
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := printJSON(f, doc); err != nil {
		f.Close()
		return fmt.Errorf("export: write %s: %w", out, err)
	}
	return f.Close()
}
