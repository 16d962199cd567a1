package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
	"github.com/runprov/runprov/plugins/history"
	"github.com/runprov/runprov/plugins/producer"
	"github.com/runprov/runprov/runfile"
)

func newReproduceCmd(a *app) *cobra.Command {
	var (
		allowChanged bool
		outputs      string
		signKey      string
	)
	cmd := &cobra.Command{
		Use:   "reproduce RUN [--allow-changed-inputs] [--outputs DIR]",
		Short: "Run a recorded run again exactly and compare its outputs",
		Long: `Run RUN's commit again with the same arguments, command, runtime, timeout and
input paths, in the same sandbox as runprov run, and compare the outputs with
the original's by sha256.

Before anything runs, the inputs are hashed again; when a file was added,
removed or changed since the original run, reproduce refuses (exit 125) and
names the files, unless --allow-changed-inputs.

The verdict is the last line on stdout: "reproduced bit-for-bit", or "not
reproduced:" and the files that differ. The new run records the run it
reproduces and the verdict (runprov show). Exit status: the container's, as
for runprov run; 1 when it exited 0 but the outputs differ; 125 when runprov
itself failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rec, err := loadRecord(ctx, a, args[0])
			if err != nil {
				return err
			}
			orig := &rec.Run
			if !orig.Status.Finished() {
				return fmt.Errorf("run %s: %w: it is %s; reproduce a finished run", core.ShortRunID(orig.ID), core.ErrInvalid, orig.Status)
			}
			t, err := a.open(ctx)
			if err != nil {
				return err
			}
			p := t.producer

			inputs := map[string]string{}
			for _, m := range orig.Mounts {
				if m.Kind == core.MountInput {
					inputs[m.Name] = m.Source
				}
			}
			changed, err := rehashInputs(ctx, orig, inputs)
			if err != nil {
				return err
			}
			if changed.Differs() {
				msg := changedInputsText(changed)
				if !allowChanged {
					return hintedError{fmt.Errorf("run %s: %w: its inputs changed since: %s", core.ShortRunID(orig.ID), core.ErrInvalid, msg),
						"restore the original inputs, or pass --allow-changed-inputs to run on them as they are now (the verdict will say so)"}
				}
				a.log.Warn("inputs changed since the original run; running on them as they are", "changes", msg)
			}

			command, err := originalCommand(ctx, a, p, orig)
			if err != nil {
				return err
			}
			opts := producer.Options{
				Commit: orig.Commit + ":" + orig.Path, Inputs: inputs, NoInput: len(inputs) == 0, OutputsDir: outputs, Args: orig.Args,
				Timeout: orig.Limits.Timeout, Runtime: orig.Runtime, AllowWeakerSandbox: orig.WeakerSandbox, Devices: orig.Devices,
				Command: command, Pull: producer.PullDefault, Progress: a.progress(), Executor: "local",
			}
			if err := a.policy.CheckWeakerSandbox(opts.AllowWeakerSandbox); err != nil {
				return err
			}
			signer, err := a.recordSigner(signKey) // sign.go
			if err != nil {
				return err
			}
			stdout := a.stdout
			if a.json {
				stdout = a.stderr
			}
			hooks := producer.Hooks{Prepared: func(prep *producer.Prepared) {
				if !a.quiet {
					fmt.Fprintf(a.stderr, "runprov: run %s reproduces %s (commit %s, image %s)\n", prep.Run.ID, orig.ID, shortHash(prep.Run.Commit), prep.Run.ImageDigest)
					if prep.Run.Drift != "" {
						fmt.Fprintf(a.stderr, "runprov: this host changed since the commit's last run: %s\n", prep.Run.Drift)
					}
				}
			}}
			run, err := p.Run(ctx, opts, runtime.Stdio{Stdout: stdout, Stderr: a.stderr}, hooks)
			if run == nil {
				return runRefused(err)
			}
			v := history.Judge(orig, run)
			verdict := v.String()
			if changed.Differs() { // even identical outputs came from other inputs
				verdict += " (inputs had changed: " + changedInputsText(changed) + ")"
			}
			// The producer stored the run; record what it reproduces and
			// the verdict on it.
			run.ReproduceOf, run.Verdict = orig.ID, verdict
			if ferr := p.Finish(ctx, run); ferr != nil {
				return errors.Join(err, ferr)
			}
			if err != nil {
				return err
			}
			if err := a.signFinished(ctx, signer, run); err != nil {
				return err
			}
			if a.json {
				if err := printJSON(a.stdout, map[string]any{"run": run.ID, "reproduce_of": orig.ID, "identical": v.Identical,
					"verdict": verdict, "outputs": v.Outputs}); err != nil {
					return err
				}
			} else {
				if !v.Identical {
					for _, fc := range v.Outputs.Changed {
						fmt.Fprintf(a.stdout, "  changed %s  %s\n", history.FileLabel(fc.Name, fc.Path), fileChangeText(fc))
					}
				}
				fmt.Fprintln(a.stdout, verdict)
			}
			if err := runExitError(run); err != nil {
				return err
			}
			if !v.Identical {
				return exitStatus{exitDiffer}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&allowChanged, "allow-changed-inputs", false, "run even when the inputs' hashes changed since the original run")
	cmd.Flags().StringVar(&outputs, "outputs", "", "host `DIR` for the outputs, new or empty (default STORE/runs/RUN/outputs)")
	cmd.Flags().StringVar(&signKey, "sign-key", "", "sign the new run's record with this private `KEY` file (default: the site policy's sign_key)")
	return cmd
}

// rehashInputs hashes each input path again, as the producer did, and
// compares the result with the original run's input manifest.
func rehashInputs(ctx context.Context, orig *core.Run, inputs map[string]string) (history.FilesDiff, error) {
	names := make([]string, 0, len(inputs))
	for n := range inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	var now []core.FileRecord
	for _, name := range names {
		recs, err := producer.Manifest(ctx, name, inputs[name], 0)
		if err != nil {
			return history.FilesDiff{}, fmt.Errorf("run %s had input %s at %s: %w; restore it to reproduce the run", core.ShortRunID(orig.ID), name, inputs[name], err)
		}
		now = append(now, recs...)
	}
	return history.CompareFiles(orig.Inputs, now), nil
}

func changedInputsText(fd history.FilesDiff) string {
	var parts []string
	for _, l := range []struct {
		what string
		fcs  []history.FileChange
	}{{"changed", fd.Changed}, {"gone", fd.Removed}, {"new", fd.Added}} {
		for _, fc := range l.fcs {
			parts = append(parts, l.what+" "+history.FileLabel(fc.Name, fc.Path))
		}
	}
	if len(parts) > 10 {
		parts = append(parts[:10], fmt.Sprintf("and %d more", len(parts)-10))
	}
	return strings.Join(parts, ", ")
}

// originalCommand is the command to give the producer (as after --) so the
// new run's argv equals the original's: nil when the Runfile and image give
// that argv by themselves.
func originalCommand(ctx context.Context, a *app, p *producer.Producer, orig *core.Run) ([]string, error) {
	data := runfileText(ctx, a, orig)
	if data == nil {
		return nil, fmt.Errorf("run %s: %w: its Runfile %s at commit %s is not in this store; pull the repository (runprov pull) first", core.ShortRunID(orig.ID), core.ErrNotFound, orig.Path, shortHash(orig.Commit))
	}
	parsed, err := runfile.Parse(orig.Path, data)
	if err != nil {
		return nil, err
	}
	rf, err := parsed.Resolve(orig.Args)
	if err != nil {
		return nil, err
	}
	var entry, cmd []string
	if img, err := p.Images.Resolve(ctx, rf.From.Digest, rf.From.Platform); err == nil {
		entry, cmd = img.Config.Entrypoint, img.Config.Cmd
	} else if rf.Entrypoint == nil || rf.Cmd == nil {
		// The producer pulls a missing image; without its config the
		// recorded argv is given whole only when it cannot be the default.
		a.log.Debug("image config unknown before the run", "err", err)
	}
	if rf.Entrypoint != nil {
		entry, cmd = rf.Entrypoint.Args, nil
	}
	if rf.Cmd != nil {
		cmd = rf.Cmd.Args
	}
	if slices.Equal(orig.Argv, append(slices.Clone(entry), cmd...)) {
		return nil, nil
	}
	if len(orig.Argv) < len(entry) || !slices.Equal(orig.Argv[:len(entry)], entry) {
		return nil, fmt.Errorf("run %s ran %q, which does not start with the ENTRYPOINT %q of its Runfile and image: %w", core.ShortRunID(orig.ID), orig.Argv, entry, core.ErrUnsupported)
	}
	return append([]string{}, orig.Argv[len(entry):]...), nil
}
