package producer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/runtime"
)

// The fakes below stand in for the store, the image driver and the
// runtime, so that Prepare's refusals are tested without root or runc.

const fakeDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

type fakeRunfiles map[string]string // commit → Runfile

func (f fakeRunfiles) Cat(_ context.Context, spec string) ([]byte, core.Commit, error) {
	rf, ok := f[spec]
	if !ok {
		return nil, core.Commit{}, fmt.Errorf("commit %s: %w", spec, core.ErrNotFound)
	}
	return []byte(rf), core.Commit{Repo: "default", Hash: spec, Path: "Runfile"}, nil
}

type fakeImages struct {
	rootfs    string
	stored    bool // Resolve finds the image
	approved  bool
	required  bool // the store requires approval
	verifyErr error
	pulled    int
}

func (f *fakeImages) Resolve(_ context.Context, digest, _ string) (*core.ResolvedImage, error) {
	if !f.stored {
		return nil, &core.ImageNotFoundError{Digest: digest}
	}
	return &core.ResolvedImage{ManifestDigest: digest, Approved: f.approved, Config: core.ImageConfig{Cmd: []string{"/bin/true"}}}, nil
}

func (f *fakeImages) Pull(context.Context, string, core.PullOptions) ([]core.ImageRecord, error) {
	f.pulled++
	return nil, errors.New("no registry here")
}

func (f *fakeImages) Unpack(context.Context, string, core.Progress) (string, bool, error) {
	return f.rootfs, true, nil
}

func (f *fakeImages) VerifyCached(context.Context, string, core.Progress) error { return f.verifyErr }

func (f *fakeImages) CheckApproval(_ context.Context, img *core.ResolvedImage) error {
	if f.required && !img.Approved {
		return &core.NotApprovedError{ManifestDigest: img.ManifestDigest}
	}
	return nil
}

func (f *fakeImages) ApprovalRequired(context.Context) (bool, error) { return f.required, nil }

type fakeRuns struct {
	created   []*core.Run
	createErr error
	finished  int
}

func (f *fakeRuns) CreateRun(_ context.Context, r *core.Run) error {
	if f.createErr != nil {
		return f.createErr
	}
	f.created = append(f.created, r)
	return nil
}
func (f *fakeRuns) FinishRun(context.Context, *core.Run) error { f.finished++; return nil }
func (f *fakeRuns) SetRunSnapshot(context.Context, string, string, string, string) error {
	return nil
}
func (f *fakeRuns) LastRunSnapshot(context.Context, string, string) (string, string, error) {
	return "", "", nil
}

// fakeRuntime gives the guarantees it is told and never runs anything.
type fakeRuntime struct {
	name string
	g    runtime.Guarantees
}

func (f fakeRuntime) Name() string                                       { return f.name }
func (f fakeRuntime) Version(context.Context) (string, error)            { return "0.0-fake", nil }
func (f fakeRuntime) Guarantees() runtime.Guarantees                     { return f.g }
func (f fakeRuntime) Kill(context.Context, string, syscall.Signal) error { return nil }
func (f fakeRuntime) List(context.Context) ([]runtime.Container, error)  { return nil, nil }
func (f fakeRuntime) Delete(context.Context, string) error               { return nil }
func (f fakeRuntime) Run(context.Context, string, string, runtime.Stdio) (int, error) {
	return -1, errors.New("the fake runtime runs nothing")
}

var fullSandbox = runtime.Guarantees{ReadOnlyBinds: true, NetworkIsolated: true, Seccomp: true, Cgroups: true, UserMapping: true, RootlessOverlay: true, Devices: true}

func newFakeProducer(t *testing.T, runfiles fakeRunfiles) (*Producer, *fakeImages, *fakeRuns) {
	t.Helper()
	root := t.TempDir()
	rootfs := filepath.Join(root, "rootfs-image")
	for _, d := range []string{"bin", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	imgs := &fakeImages{rootfs: rootfs, stored: true, approved: true}
	runs := &fakeRuns{}
	p := &Producer{
		Layout:   core.Layout{Root: filepath.Join(root, "store")},
		Runfiles: runfiles, Images: imgs, Runs: runs,
		Runtimes: map[string]runtime.Runtime{
			"runc":   fakeRuntime{"runc", fullSandbox},
			"ch-run": fakeRuntime{"ch-run", runtime.Guarantees{RunsAsCaller: true}},
		},
		RuntimeDir: filepath.Join(root, "run"),
	}
	return p, imgs, runs
}

// TestPrepareRefusals: each refusal wraps its sentinel, says what is wrong,
// and leaves no run behind: no row, no run directory.
func TestPrepareRefusals(t *testing.T) {
	const from = "FROM busybox@" + fakeDigest + "\n"
	runfiles := fakeRunfiles{
		"plain":   from + "CMD [\"/bin/true\"]\n",
		"input":   from + "INPUT data /data\nCMD [\"/bin/true\"]\n",
		"needarg": from + "ARG WHO\nENV X=${WHO}\nCMD [\"/bin/true\"]\n",
		"device":  "# runprov-format=2\n" + from + "DEVICE nvidia.com/gpu=0\nCMD [\"/bin/true\"]\n",
		"broken":  "FROM busybox:latest\nCMD [\"/bin/true\"]\n",
	}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		opts   Options
		images func(*fakeImages)
		want   error
		says   string
	}{
		{"unknown runtime", Options{Commit: "plain", Runtime: "crun"}, nil, core.ErrInvalid, "known runtimes: ch-run, runc"},
		{"no such commit", Options{Commit: "gone"}, nil, core.ErrNotFound, "commit gone"},
		{"unpinned image", Options{Commit: "broken"}, nil, core.ErrInvalid, "has no digest"},
		{"ARG without a value", Options{Commit: "needarg"}, nil, core.ErrInvalid, "WHO"},
		{"devices on ch-run", Options{Commit: "device", Runtime: "ch-run", AllowWeakerSandbox: true}, nil, core.ErrUnsupported, "cannot give the run CDI devices"},
		{"image not stored, pull never", Options{Commit: "plain", Pull: PullNever}, func(f *fakeImages) { f.stored = false }, core.ErrNotFound, fakeDigest},
		{"image not stored, pull fails", Options{Commit: "plain", Pull: PullMissing}, func(f *fakeImages) { f.stored = false }, core.ErrNotFound, "no registry here"},
		{"not approved", Options{Commit: "plain"}, func(f *fakeImages) { f.required, f.approved = true, false }, core.ErrNotApproved, ""},
		{"verification fails", Options{Commit: "plain"}, func(f *fakeImages) { f.verifyErr = fmt.Errorf("layer 1: %w", core.ErrCorrupt) }, core.ErrCorrupt, "refusing to run it"},
		{"input missing", Options{Commit: "input", Inputs: map[string]string{"data": "/nonexistent/data"}}, nil, core.ErrNotFound, "--input data=/nonexistent/data"},
		{"outputs not empty", Options{Commit: "plain", OutputsDir: full}, nil, core.ErrExists, "not empty"},
		{"weaker sandbox not allowed", Options{Commit: "plain", Runtime: "ch-run", NoInput: true}, nil, core.ErrUnsafe, "--allow-weaker-sandbox"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, imgs, runs := newFakeProducer(t, runfiles)
			if c.images != nil {
				c.images(imgs)
			}
			prep, err := p.Prepare(context.Background(), c.opts)
			if !errors.Is(err, c.want) || !strings.Contains(fmt.Sprint(err), c.says) {
				t.Fatalf("want %v saying %q, got %v", c.want, c.says, err)
			}
			if prep != nil || len(runs.created) != 0 {
				t.Errorf("a refused run was stored: %+v", runs.created)
			}
			if ents, _ := os.ReadDir(p.Layout.RunsDir()); len(ents) != 0 {
				t.Errorf("a refused run left %d run directories", len(ents))
			}
		})
	}
}

// TestPrepareWritesTheRun: a run Prepare accepts is stored as running with
// its spec and plan on disk, and the plan follows the runtime's guarantees.
func TestPrepareWritesTheRun(t *testing.T) {
	p, _, runs := newFakeProducer(t, fakeRunfiles{"c1": "FROM busybox@" + fakeDigest + "\nCMD [\"/bin/echo\", \"hi\"]\n"})
	prep, err := p.Prepare(context.Background(), Options{Commit: "c1", Runtime: "ch-run", AllowWeakerSandbox: true, NoInput: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs.created) != 1 || runs.created[0].Status != core.RunRunning || !runs.created[0].WeakerSandbox || runs.created[0].RuntimeVersion != "0.0-fake" {
		t.Fatalf("stored %+v", runs.created)
	}
	for _, f := range []string{"config.json", "run.json", "plan.json"} {
		if _, err := os.Stat(filepath.Join(prep.Dir, f)); err != nil {
			t.Error(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(prep.Dir, "plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pl execPlan
	if err := json.Unmarshal(b, &pl); err != nil {
		t.Fatal(err)
	}
	if !pl.SameOwner || pl.Overlay {
		t.Errorf("a runtime that runs as the caller: plan %+v", pl)
	}
}

// countingRuntime counts the containers it is asked to run.
type countingRuntime struct {
	fakeRuntime
	runs *int
}

func (c countingRuntime) Run(context.Context, string, string, runtime.Stdio) (int, error) {
	*c.runs++
	return 0, nil
}

// TestRunStartsNothingUnstored: Run stores the run while it sets up the
// sandbox; when the run cannot be stored, no container starts, nothing is
// finished and the run's directory is gone.
func TestRunStartsNothingUnstored(t *testing.T) {
	p, _, runs := newFakeProducer(t, fakeRunfiles{"c1": "FROM busybox@" + fakeDigest + "\nCMD [\"/bin/true\"]\n"})
	var started int
	p.Runtimes["ch-run"] = countingRuntime{fakeRuntime{"ch-run", runtime.Guarantees{RunsAsCaller: true}}, &started}
	opts := Options{Commit: "c1", Runtime: "ch-run", AllowWeakerSandbox: true, NoInput: true}

	runs.createErr = errors.New("database or disk is full")
	run, err := p.Run(context.Background(), opts, runtime.Stdio{}, Hooks{})
	if err == nil || !strings.Contains(err.Error(), "disk is full") || run != nil {
		t.Fatalf("Run = %v, %v; want the store's error and no run", run, err)
	}
	if started != 0 || runs.finished != 0 {
		t.Errorf("%d containers started, %d runs finished; want none", started, runs.finished)
	}
	if ents, err := os.ReadDir(filepath.Join(p.Layout.Root, "runs")); err != nil || len(ents) != 0 {
		t.Errorf("run directories left: %v (%v)", ents, err)
	}

	// Stored, the same run starts its container and is finished.
	runs.createErr = nil
	run, err = p.Run(context.Background(), opts, runtime.Stdio{}, Hooks{})
	if err != nil || run.Status != core.RunSucceeded || started != 1 || runs.finished != 1 {
		t.Fatalf("Run = %+v, %v; %d started, %d finished", run, err, started, runs.finished)
	}
}
