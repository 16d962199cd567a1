package main

import (
	"github.com/runprov/runprov/core"
	gitdrv "github.com/runprov/runprov/drivers/git"
	imagedrv "github.com/runprov/runprov/drivers/image"
	slurmdrv "github.com/runprov/runprov/drivers/slurm"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/consumer"
	"github.com/runprov/runprov/plugins/history"
	slurmplug "github.com/runprov/runprov/plugins/slurm"
)

// wire builds the Terminal: every plugin and driver of runprov, registered
// explicitly, here and nowhere else.
func wire(a *app, st *sqlite.Store) *core.Terminal {
	t := core.NewTerminal()
	layout := st.Layout()
	gitOpener := gitdrv.Opener{}

	t.Drivers.Register(st)
	t.Drivers.Register(sqlite.ChainChecker{Store: st})
	t.Drivers.Register(gitOpener)
	images := imagedrv.New(layout, st, imagedrv.Options{Logger: a.log})
	t.Drivers.Register(images)

	cons := &consumer.Consumer{Store: st, Git: gitOpener, Salvager: gitOpener, TmpDir: layout.Tmp(), Log: a.log}
	t.Plugins.Register(cons)
	prod, runtimes := newProducer(a, st, cons, policyImages{images, a.policy, st})
	for _, rt := range runtimes {
		t.Drivers.Register(rt)
	}
	t.Plugins.Register(prod)
	t.Plugins.Register(&history.Checker{Store: st, RunsDir: layout.RunsDir()})
	slurm := &slurmdrv.Client{Log: a.log}
	t.Drivers.Register(slurm)
	t.Plugins.Register(&slurmplug.Tracker{Store: st, Layout: layout, Scheduler: slurm, Log: a.log, Grace: slurmGrace()})
	return t
}
