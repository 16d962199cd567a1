package producer

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/runfile"
)

// The hooks of the Slurm executor (cmd/runprov/cmd_slurm.go): a run
// prepared here and executed by a job on another node.

// ArrayTaskArg is the ARG an array task's index is given as, when the
// Runfile declares it; it is recorded in every array task's args.
const ArrayTaskArg = "SLURM_ARRAY_TASK_ID"

// queuedWriter stores a new run as queued: no process of this host owns it
// (so nothing marks it aborted when this runprov exits), and the scheduler
// moves it on.
type queuedWriter struct {
	RunWriter
	edit func(*core.Run)
}

func (w queuedWriter) CreateRun(ctx context.Context, r *core.Run) error {
	w.edit(r)
	return w.RunWriter.CreateRun(ctx, r)
}

// PrepareQueued prepares a run for an executor on another node: as
// Prepare, with opts.Executor, but the run is stored queued, as task
// arrayTask of a Slurm array when arrayTask ≥ 0 (its index passed as
// --arg SLURM_ARRAY_TASK_ID when the Runfile declares that ARG, and
// recorded in the run's args either way), and without a snapshot of this
// host: the node takes its own when it executes the run.
func (p *Producer) PrepareQueued(ctx context.Context, opts Options, arrayTask int) (*Prepared, error) {
	src := p.Runfiles
	if arrayTask >= 0 {
		// Every task of an array runs the Runfile the first one read, and
		// reads it once.
		src = p.arrayRunfiles()
		declared, err := declaresArg(ctx, src, opts.Commit, ArrayTaskArg)
		if err != nil {
			return nil, err
		}
		if declared {
			opts.Args = maps.Clone(opts.Args)
			if opts.Args == nil {
				opts.Args = map[string]string{}
			}
			opts.Args[ArrayTaskArg] = strconv.Itoa(arrayTask)
		}
	}
	p.verifiedSet() // shared with the copy: an array verifies its image once
	q := *p
	q.Runfiles = src
	q.Host = nil
	q.Runs = queuedWriter{RunWriter: p.Runs, edit: func(r *core.Run) {
		r.Status = core.RunQueued
		if arrayTask >= 0 {
			task := arrayTask
			r.Slurm = &core.SlurmJob{ArrayTask: &task}
			if r.Args == nil {
				r.Args = map[string]string{}
			}
			r.Args[ArrayTaskArg] = strconv.Itoa(arrayTask)
		}
	}}
	prep, err := q.Prepare(ctx, opts)
	if err != nil {
		return nil, err
	}
	// run.json was written before the run was stored: give it the task's
	// args, and the status Execute starts from on the node.
	onNode := *prep.Run
	onNode.Status = core.RunRunning
	if err := writeJSON(filepath.Join(prep.Dir, "run.json"), &onNode); err != nil {
		return nil, fmt.Errorf("prepare run %s: %w", prep.Run.ID, err)
	}
	return prep, nil
}

func declaresArg(ctx context.Context, src RunfileSource, commit, name string) (bool, error) {
	data, row, err := src.Cat(ctx, commit)
	if err != nil {
		return false, err
	}
	f, err := runfile.Parse(row.Path, data)
	if err != nil {
		return false, err
	}
	for _, a := range f.Args {
		if a.Name == name {
			return true, nil
		}
	}
	return false, nil
}

// arrayRunfiles returns p's Runfile source remembering what it read, made
// on first use and shared by the copies PrepareQueued makes.
func (p *Producer) arrayRunfiles() *memoRunfiles {
	if p.arrayMemo == nil {
		p.arrayMemo = &memoRunfiles{src: p.Runfiles, m: map[string]memoRunfile{}}
	}
	return p.arrayMemo
}

// memoRunfiles is a RunfileSource that reads each spec once: a spec such as
// a repository name names one commit for the whole array.
type memoRunfiles struct {
	src RunfileSource
	mu  sync.Mutex
	m   map[string]memoRunfile
}

type memoRunfile struct {
	data []byte
	row  core.Commit
}

func (c *memoRunfiles) Cat(ctx context.Context, spec string) ([]byte, core.Commit, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.m[spec]; ok {
		return f.data, f.row, nil
	}
	data, row, err := c.src.Cat(ctx, spec)
	if err == nil {
		c.m[spec] = memoRunfile{data, row}
	}
	return data, row, err
}
