package main

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/cdi"
	gitdrv "github.com/runprov/runprov/drivers/git"
	imagedrv "github.com/runprov/runprov/drivers/image"
	"github.com/runprov/runprov/drivers/keys"
	"github.com/runprov/runprov/drivers/policy"
	"github.com/runprov/runprov/drivers/runtime"
	slurmdrv "github.com/runprov/runprov/drivers/slurm"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/consumer"
	"github.com/runprov/runprov/plugins/history"
	"github.com/runprov/runprov/plugins/producer"
	slurmplug "github.com/runprov/runprov/plugins/slurm"
)

// checker is what runprov fsck asks of a component: verify what it keeps,
// calling report for every problem; an error means it could not check at
// all.
type checker interface {
	Check(ctx context.Context, report func(core.Problem)) error
}

// namedChecker is a checker with the name fsck's logs and errors give it.
type namedChecker struct {
	name string
	checker
}

// components are the plugins and drivers of one runprov invocation, built
// once by wire. Every driver is constructed in this file and nowhere else.
type components struct {
	store    *sqlite.Store
	images   *imagedrv.Store
	consumer *consumer.Consumer
	producer *producer.Producer
	slurm    *slurmdrv.Client
	tracker  *slurmplug.Tracker
	// checkers are what fsck runs, in this order.
	checkers []namedChecker
}

// policyKeys checks the keys a site policy names; loadPolicy uses it before
// any store is opened.
var policyKeys policy.KeyChecker = keys.Checker{}

// openSQLite opens the store's middleware, read-only or for writing.
func openSQLite(ctx context.Context, a *app, dir string, readOnly bool) (*sqlite.Store, error) {
	return sqlite.Open(ctx, dir, sqlite.Options{Logger: a.log, ReadOnly: readOnly})
}

// runtimes are the container runtimes runprov knows, by name.
func runtimes(layout core.Layout) map[string]runtime.Runtime {
	runc := &runtime.Runc{Root: filepath.Join(layout.Root, "runtime", "runc"), VersionCache: filepath.Join(layout.Root, "runtime", "runc.version")}
	chrun := &runtime.ChRun{}
	return map[string]runtime.Runtime{runc.Name(): runc, chrun.Name(): chrun}
}

// nodeRuntimes are the runtimes exec-prepared runs a prepared run with on a
// Slurm node: no version cache, as each node has its own runc.
func nodeRuntimes(layout core.Layout) map[string]runtime.Runtime {
	return map[string]runtime.Runtime{
		"runc":   &runtime.Runc{Root: filepath.Join(layout.Root, "runtime", "runc")},
		"ch-run": &runtime.ChRun{},
	}
}

// nodeSlurmClient asks the scheduler, briefly, from a Slurm node.
func nodeSlurmClient(timeout time.Duration) *slurmdrv.Client {
	return &slurmdrv.Client{QueryTimeout: timeout}
}

// wire builds every plugin and driver of runprov over the opened store,
// here and nowhere else. a.kernel, when set, is the system kernel snapshot
// a local run started collecting before the store opened.
func wire(a *app, st *sqlite.Store) *components {
	layout := st.Layout()
	gitOpener := gitdrv.Opener{}
	images := imagedrv.New(layout, st, imagedrv.Options{Logger: a.log})
	cons := &consumer.Consumer{Store: st, Git: gitOpener, Salvager: gitOpener, TmpDir: layout.Tmp(), Log: a.log}
	prod := &producer.Producer{
		Layout: layout, Runfiles: cons, Images: policyImages{images, a.policy, st}, Runs: st,
		Host:       hostProbe{st: st, kernel: a.kernel},
		Runtimes:   runtimes(layout),
		InputCache: st,
		Log:        a.log,
		// CDI hooks run as root on the host: only the site policy allows them.
		Devices: &cdi.Resolver{Dirs: cdi.DirsFromEnv(), AllowHooks: a.policy.Active() && a.policy.AllowCDIHooks},
	}
	if d := os.Getenv("RUNPROV_RUNTIME_DIR"); d != "" {
		prod.RuntimeDir = d
	}
	slurm := &slurmdrv.Client{Log: a.log}
	tracker := &slurmplug.Tracker{Store: st, Layout: layout, Scheduler: slurm, Log: a.log, Grace: slurmGrace()}
	return &components{
		store: st, images: images, consumer: cons, producer: prod, slurm: slurm, tracker: tracker,
		checkers: []namedChecker{
			{"chain", sqlite.ChainChecker{Store: st}},
			{"image", images},
			{"sqlite", st},
			{"consumer", cons},
			{"runs", &history.Checker{Store: st, RunsDir: layout.RunsDir()}},
			{"slurm-records", tracker},
		},
	}
}
