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
	"github.com/runprov/runprov/drivers/inventory"
	"github.com/runprov/runprov/drivers/keys"
	"github.com/runprov/runprov/drivers/policy"
	"github.com/runprov/runprov/drivers/runtime"
	slurmdrv "github.com/runprov/runprov/drivers/slurm"
	"github.com/runprov/runprov/drivers/spool"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/consumer"
	"github.com/runprov/runprov/plugins/history"
	"github.com/runprov/runprov/plugins/producer"
	"github.com/runprov/runprov/plugins/release"
	"github.com/runprov/runprov/plugins/sbom"
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
	sbom     *sbom.Service
	slurm    *slurmdrv.Client
	tracker  *slurmplug.Tracker
	submit   *slurmplug.Submission
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

// nodeExecutor executes prepared runs on a Slurm node, from the store's
// files alone: no version cache, as each node has its own runc, and a
// scheduler asked only briefly.
func nodeExecutor(layout core.Layout) *slurmplug.Node {
	return &slurmplug.Node{
		Layout: layout,
		Runtimes: map[string]runtime.Runtime{
			"runc":   &runtime.Runc{Root: filepath.Join(layout.Root, "runtime", "runc")},
			"ch-run": &runtime.ChRun{},
		},
		Scheduler: &slurmdrv.Client{QueryTimeout: 5 * time.Second},
	}
}

// wire builds every plugin and driver of runprov over the opened store,
// here and nowhere else. a.kernel, when set, is the system kernel snapshot
// a local run started collecting before the store opened.
func wire(a *app, st *sqlite.Store) *components {
	layout := st.Layout()
	gitOpener := gitdrv.Opener{}
	images := imagedrv.New(layout, st, imagedrv.Options{Logger: a.log})
	sb := &sbom.Service{Images: images, Store: st, Read: inventory.Read, Probe: inventory.Probe, Log: a.log}
	cons := &consumer.Consumer{Store: st, Git: gitOpener, Salvager: gitOpener, TmpDir: layout.Tmp(), Log: a.log}
	prod := &producer.Producer{
		Layout: layout, Runfiles: cons, Images: policyImages{images, a.policy, st}, Runs: st,
		Host:       hostProbe{st: st, kernel: a.kernel},
		Runtimes:   runtimes(layout),
		InputCache: st,
		Log:        a.log,
		Inventory:  sb,
		// CDI hooks run as root on the host: only the site policy allows them.
		Devices: &cdi.Resolver{Dirs: cdi.DirsFromEnv(), AllowHooks: a.policy.Active() && a.policy.AllowCDIHooks},
	}
	if d := os.Getenv("RUNPROV_RUNTIME_DIR"); d != "" {
		prod.RuntimeDir = d
	}
	slurm := &slurmdrv.Client{Log: a.log}
	tracker := &slurmplug.Tracker{Store: st, Layout: layout, Scheduler: slurm, Log: a.log, Grace: slurmGrace()}
	return &components{
		store: st, images: images, consumer: cons, producer: prod, sbom: sb, slurm: slurm, tracker: tracker,
		submit: &slurmplug.Submission{Producer: prod, Runs: st, Scheduler: slurm, Store: layout.Root, Log: a.log},
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

// airlock builds the release airlock over the policy's release spool; it
// needs no store (checkers have none of the analyst's).
func airlock(a *app) (*release.Release, error) {
	if err := a.loadPolicy(); err != nil {
		return nil, err
	}
	p := a.policy
	if p.ReleaseRules.Dir == "" {
		return nil, errNoSpool(p)
	}
	checkers, err := checkerKeys(p)
	if err != nil {
		return nil, err
	}
	return &release.Release{Spool: &spool.Spool{Dir: p.ReleaseRules.Dir}, Verifier: releaseVerifier{}, Rules: p.Release(), Policy: p.Path, Checkers: checkers, SiteKey: siteRecordKey(p),
		RequireSigned: p.RequireSignedRecords}, nil
}
