package producer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
	"github.com/runprov/runprov/plugins/history"
	"github.com/runprov/runprov/runfile"
)

// InputsChangedError refuses to reproduce a run whose inputs were added,
// removed or changed since it ran. It matches core.ErrInvalid.
type InputsChangedError struct {
	Run     string // the original run's id
	Changes history.FilesDiff
}

func (e *InputsChangedError) Error() string {
	return fmt.Sprintf("run %s: %s: its inputs changed since: %s", core.ShortRunID(e.Run), core.ErrInvalid, ChangedInputsText(e.Changes))
}

// Is lets errors.Is(err, core.ErrInvalid) match.
func (e *InputsChangedError) Is(target error) bool { return target == core.ErrInvalid }

// Reproducible refuses, with core.ErrInvalid, a run that has not finished.
func Reproducible(orig *core.Run) error {
	if !orig.Status.Finished() {
		return fmt.Errorf("run %s: %w: it is %s; reproduce a finished run", core.ShortRunID(orig.ID), core.ErrInvalid, orig.Status)
	}
	return nil
}

// ReproducePlan is how a recorded run is run again: the options of the new
// run and how its inputs differ from the original's.
type ReproducePlan struct {
	Original *core.Run
	Options  Options
	Changed  history.FilesDiff // empty when the inputs hash as they did
}

// PlanReproduce works out how to run orig again exactly: the same commit,
// arguments, command, runtime, timeout, devices and input paths, with the
// inputs hashed again. moved gives new host paths of inputs, by INPUT
// name, for data that moved since: the hashes are still compared with the
// recorded ones. It returns an *InputsChangedError when they differ,
// unless allowChanged, refuses (core.ErrInvalid) a moved input the run
// did not have, and refuses a run that has not finished (Reproducible).
func (p *Producer) PlanReproduce(ctx context.Context, orig *core.Run, outputsDir string, moved map[string]string, allowChanged bool) (*ReproducePlan, error) {
	if err := Reproducible(orig); err != nil {
		return nil, err
	}
	inputs := map[string]string{}
	for _, m := range orig.Mounts {
		if m.Kind == core.MountInput {
			inputs[m.Name] = m.Source
		}
	}
	for name, path := range moved {
		if _, ok := inputs[name]; !ok {
			return nil, fmt.Errorf("--input %s: %w: run %s had no input %s (its inputs: %s)", name, core.ErrInvalid, core.ShortRunID(orig.ID), name, inputNames(inputs))
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		inputs[name] = abs
	}
	changed, err := rehashInputs(ctx, orig, inputs)
	if err != nil {
		return nil, err
	}
	if changed.Differs() {
		if !allowChanged {
			return nil, &InputsChangedError{Run: orig.ID, Changes: changed}
		}
		p.log().Warn("inputs changed since the original run; running on them as they are", "changes", ChangedInputsText(changed))
	}
	command, err := p.originalCommand(ctx, orig)
	if err != nil {
		return nil, err
	}
	opts := Options{
		Commit: orig.Commit + ":" + orig.Path, Inputs: inputs, NoInput: len(inputs) == 0, OutputsDir: outputsDir, Args: orig.Args,
		Timeout: orig.Limits.Timeout, Runtime: orig.Runtime, AllowWeakerSandbox: orig.WeakerSandbox, Devices: orig.Devices,
		Command: command, Pull: PullDefault, Executor: "local", Rehash: true,
	}
	return &ReproducePlan{Original: orig, Options: opts, Changed: changed}, nil
}

// Reproduction is a finished reproduction: the new run, which records the
// run it reproduces and the verdict, and the comparison of its outputs.
type Reproduction struct {
	Run     *core.Run
	Verdict history.Verdict
	Text    string // the verdict as recorded, with changed inputs named
}

// Reproduce runs plan and records on the new run what it reproduces and the
// verdict. As for Run, a nil Reproduction means nothing ran; one that ran
// is returned with the error of its execution or of storing it, if any.
func (p *Producer) Reproduce(ctx context.Context, plan *ReproducePlan, stdio runtime.Stdio, h Hooks) (*Reproduction, error) {
	run, err := p.Run(ctx, plan.Options, stdio, h)
	if run == nil {
		return nil, err
	}
	v := history.Judge(plan.Original, run)
	text := v.String()
	if plan.Changed.Differs() { // even identical outputs came from other inputs
		text += " (inputs had changed: " + ChangedInputsText(plan.Changed) + ")"
	}
	run.ReproduceOf, run.Verdict = plan.Original.ID, text
	if ferr := p.Finish(ctx, run); ferr != nil {
		err = errors.Join(err, ferr)
	}
	return &Reproduction{Run: run, Verdict: v, Text: text}, err
}

// inputNames lists the names of inputs, or says there are none.
func inputNames(inputs map[string]string) string {
	if len(inputs) == 0 {
		return "none"
	}
	names := make([]string, 0, len(inputs))
	for n := range inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// rehashInputs hashes each input path again, as a run does, and compares
// the result with the original run's input manifest.
func rehashInputs(ctx context.Context, orig *core.Run, inputs map[string]string) (history.FilesDiff, error) {
	names := make([]string, 0, len(inputs))
	for n := range inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	var now []core.FileRecord
	for _, name := range names {
		recs, err := Manifest(ctx, name, inputs[name], 0)
		if err != nil {
			return history.FilesDiff{}, &InputGoneError{Run: orig.ID, Input: name, Path: inputs[name], Err: err}
		}
		now = append(now, recs...)
	}
	return history.CompareFiles(orig.Inputs, now), nil
}

// InputGoneError is an input of the original run that cannot be hashed
// again (moved, removed, unreadable).
type InputGoneError struct {
	Run, Input, Path string
	Err              error
}

func (e *InputGoneError) Error() string {
	return fmt.Sprintf("run %s had input %s at %s: %v", core.ShortRunID(e.Run), e.Input, e.Path, e.Err)
}

func (e *InputGoneError) Unwrap() error { return e.Err }

// ChangedInputsText names the changed, gone and new files of fd, at most
// ten of them.
func ChangedInputsText(fd history.FilesDiff) string {
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

// RunfileGoneError is a run whose Runfile is not in this store (its
// repository was never pulled here).
type RunfileGoneError struct {
	Run, Path, Commit string
}

func (e *RunfileGoneError) Error() string {
	return fmt.Sprintf("run %s: %s: its Runfile %s at commit %s is not in this store", core.ShortRunID(e.Run), core.ErrNotFound, e.Path, shortCommit(e.Commit))
}

// Is lets errors.Is(err, core.ErrNotFound) match.
func (e *RunfileGoneError) Is(target error) bool { return target == core.ErrNotFound }

func shortCommit(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// originalCommand is the command to give Run (as after --) so that the new
// run's argv equals the original's: nil when the Runfile and image give that
// argv by themselves. It applies Plan's ENTRYPOINT and CMD rule.
func (p *Producer) originalCommand(ctx context.Context, orig *core.Run) ([]string, error) {
	data, _, err := p.Runfiles.Cat(ctx, orig.Commit+":"+orig.Path)
	if err != nil {
		p.log().Warn("cannot read the run's Runfile", "run", core.ShortRunID(orig.ID), "commit", orig.Commit, "err", err)
		return nil, &RunfileGoneError{Run: orig.ID, Path: orig.Path, Commit: orig.Commit}
	}
	parsed, err := runfile.Parse(orig.Path, data)
	if err != nil {
		return nil, err
	}
	rf, err := parsed.Resolve(orig.Args)
	if err != nil {
		return nil, err
	}
	var img core.ImageConfig
	if resolved, err := p.Images.Resolve(ctx, rf.From.Digest, rf.From.Platform); err == nil {
		img = resolved.Config
	} else if rf.Entrypoint == nil || rf.Cmd == nil {
		// Run pulls a missing image; without its config the recorded argv
		// is given whole only when it cannot be the default.
		p.log().Debug("image config unknown before the run", "err", err)
	}
	entry, cmd := entrypointAndCmd(rf, img)
	if slices.Equal(orig.Argv, append(slices.Clone(entry), cmd...)) {
		return nil, nil
	}
	if len(orig.Argv) < len(entry) || !slices.Equal(orig.Argv[:len(entry)], entry) {
		return nil, fmt.Errorf("run %s ran %q, which does not start with the ENTRYPOINT %q of its Runfile and image: %w", core.ShortRunID(orig.ID), orig.Argv, entry, core.ErrUnsupported)
	}
	return append([]string{}, orig.Argv[len(entry):]...), nil
}
