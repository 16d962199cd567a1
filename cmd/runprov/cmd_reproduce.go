package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/drivers/runtime"
	"github.com/runprov/runprov/plugins/history"
	"github.com/runprov/runprov/plugins/producer"
)

func newReproduceCmd(a *app) *cobra.Command {
	var (
		allowChanged bool
		outputs      string
		inputs       []string
		signKey      string
	)
	cmd := &cobra.Command{
		Use:   "reproduce RUN [--input NAME=PATH]... [--allow-changed-inputs] [--outputs DIR]",
		Short: "Run a recorded run again exactly and compare its outputs",
		Long: `Run RUN's commit again with the same arguments, command, runtime, timeout and
input paths, in the same sandbox as runprov run, and compare the outputs with
the original's by sha256.

Before anything runs, the inputs are hashed again; when a file was added,
removed or changed since the original run, reproduce refuses (exit 125) and
names the files, unless --allow-changed-inputs. Data that moved is given
with --input NAME=PATH, as for run: the files found there must hash as the
run recorded, and the verdict compares outputs as always.

The verdict is the last line on stdout: "reproduced bit-for-bit", or "not
reproduced:" and the files that differ. The new run records the run it
reproduces and the verdict (runprov show). Exit status: the container's, as
for runprov run; 1 when it exited 0 but the outputs differ; 125 when runprov
itself failed.`,
		Args: exactArgs("reproduce", "which run? (runprov runs lists them; last is the newest)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rec, err := loadRecord(ctx, a, args[0])
			if err != nil {
				return err
			}
			if err := producer.Reproducible(&rec.Run); err != nil {
				return err
			}
			t, err := a.open(ctx)
			if err != nil {
				return err
			}
			moved, err := keyValues("--input", inputs)
			if err != nil {
				return err
			}
			plan, err := t.producer.PlanReproduce(ctx, &rec.Run, outputs, moved, allowChanged)
			if err != nil {
				return err
			}
			plan.Options.Progress = a.progress()
			if err := a.policy.CheckWeakerSandbox(plan.Options.AllowWeakerSandbox); err != nil {
				return err
			}
			signer, err := a.recordSigner(signKey) // sign.go
			if err != nil {
				return err
			}
			return a.reproduce(ctx, t.producer, plan, signer)
		},
	}
	cmd.Flags().StringArrayVar(&inputs, "input", nil, "the input `NAME=PATH` moved here since the run (repeat); its files must still hash as recorded")
	cmd.Flags().BoolVar(&allowChanged, "allow-changed-inputs", false, "run even when the inputs' hashes changed since the original run")
	cmd.Flags().StringVar(&outputs, "outputs", "", "host `DIR` for the outputs, new or empty (default STORE/runs/RUN/outputs)")
	cmd.Flags().StringVar(&signKey, "sign-key", "", "sign the new run's record with this private `KEY` file (default: the site policy's sign_key)")
	return cmd
}

// reproduce runs plan, prints the verdict and returns the exit status.
func (a *app) reproduce(ctx context.Context, p *producer.Producer, plan *producer.ReproducePlan, signer *recordSigner) error {
	orig := plan.Original
	stdout := a.stdout
	if a.json {
		stdout = a.stderr
	}
	hooks := producer.Hooks{Prepared: func(prep *producer.Prepared) {
		if !a.quiet {
			fmt.Fprintf(a.stderr, "runprov: run %s reproduces %s (commit %s, image %s)\n", prep.Run.ID, orig.ID, shortHash(prep.Run.Commit), prep.Run.ImageDigest)
		}
	}}
	rep, err := p.Reproduce(ctx, plan, runtime.Stdio{Stdout: stdout, Stderr: a.stderr}, hooks)
	if rep == nil {
		return err
	}
	if !a.quiet {
		printDrift(a, rep.Run)
	}
	if err != nil {
		return err
	}
	run, v := rep.Run, rep.Verdict
	if err := a.signFinished(ctx, signer, run); err != nil {
		return err
	}
	if a.json {
		if err := printJSON(a.stdout, map[string]any{"run": run.ID, "reproduce_of": orig.ID, "identical": v.Identical,
			"verdict": rep.Text, "outputs": v.Outputs}); err != nil {
			return err
		}
	} else {
		if !v.Identical {
			for _, fc := range v.Outputs.Changed {
				fmt.Fprintf(a.stdout, "  changed %s  %s\n", history.FileLabel(fc.Name, fc.Path), fileChangeText(fc))
			}
		}
		fmt.Fprintln(a.stdout, rep.Text)
	}
	if err := runExitError(run); err != nil {
		return err
	}
	if !v.Identical {
		return exitStatus{exitDiffer}
	}
	return nil
}
