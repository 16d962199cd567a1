package slurm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	slurmdrv "github.com/runprov/runprov/drivers/slurm"
	"github.com/runprov/runprov/drivers/slurm/slurmtest"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/slurm"
	"github.com/runprov/runprov/plugins/slurm/recordtest"
)

func newStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, _, err := sqlite.Init(context.Background(), t.TempDir(), nil, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// runJSON is how runs are compared: as JSON, so times compare by instant
// and nil vs empty collections do not matter.
func runJSON(t *testing.T, r *core.Run) string {
	t.Helper()
	b, _ := json.Marshal(r)
	var m map[string]any
	json.Unmarshal(b, &m)
	for k, v := range m {
		if a, ok := v.([]any); v == nil || (ok && len(a) == 0) {
			delete(m, k)
		}
		if o, ok := v.(map[string]any); ok && len(o) == 0 {
			delete(m, k)
		}
	}
	b, _ = json.MarshalIndent(m, "", " ")
	return string(b)
}

// wantStored is rec's run as the store should hold it after ingestion.
func wantStored(rec *slurm.Record) *core.Run {
	r := rec.Run
	r.EnvironmentSHA256 = rec.Environment.SHA256()
	r.SystemKernelSHA256 = rec.SystemKernel.SHA256()
	return &r
}

func TestWriteReadRecord(t *testing.T) {
	dir := t.TempDir()
	q := recordtest.Queued(1, "7", false)
	rec := recordtest.Finished(q, "node1", 3)
	if err := slurm.WriteRecord(dir, rec); err != nil {
		t.Fatal(err)
	}
	got, err := slurm.ReadRecord(filepath.Join(dir, slurm.RecordName))
	if err != nil {
		t.Fatal(err)
	}
	if runJSON(t, &got.Run) != runJSON(t, &rec.Run) || got.SystemKernel.SHA256() != rec.SystemKernel.SHA256() {
		t.Fatal("record read back differs from the one written")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("run dir holds %d entries after writing the record, want only %s", len(entries), slurm.RecordName)
	}
	// A torn or foreign file is corrupt, never a finished run.
	for name, text := range map[string]string{
		"torn":     `{"version":1,"run":{"id":"ab`,
		"running":  `{"version":1,"run":{"id":"ab","status":"running"}}`,
		"version9": `{"version":9,"run":{"id":"ab","status":"succeeded"}}`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		if _, err := slurm.ReadRecord(p); !errors.Is(err, core.ErrCorrupt) {
			t.Errorf("%s record: %v, want ErrCorrupt", name, err)
		}
	}
}

func TestIngestIsIdempotent(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	runs, err := recordtest.Setup(ctx, st, st.Layout(), 5, "100")
	if err != nil {
		t.Fatal(err)
	}
	tr := &slurm.Tracker{Store: st, Layout: st.Layout()}
	if n, err := tr.Ingest(ctx); n != 0 || err != nil {
		t.Fatalf("ingest without records: %d, %v", n, err)
	}
	recs := map[string]*slurm.Record{}
	for _, q := range runs[:3] {
		rec := recordtest.Finished(q, "node1", 2)
		recs[q.ID] = rec
		if err := slurm.WriteRecord(st.Layout().Run(q.ID), rec); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		n, err := tr.Ingest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[int]int{0: 3}[round]; n != want {
			t.Fatalf("round %d ingested %d records, want %d", round, n, want)
		}
	}
	for _, q := range runs {
		got, err := st.Run(ctx, q.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rec := recs[q.ID]; rec != nil {
			if g, w := runJSON(t, got), runJSON(t, wantStored(rec)); g != w {
				t.Errorf("run %s after ingestion:\n%s\nwant\n%s", q.ID, g, w)
			}
		} else if got.Status != core.RunQueued {
			t.Errorf("run %s without a record is %s", q.ID, got.Status)
		}
	}
	// Ingesting the same record again (as a second runprov would) changes nothing.
	q := runs[0]
	if err := tr.StoreRecord(ctx, &q, recs[q.ID]); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Run(ctx, q.ID)
	if runJSON(t, got) != runJSON(t, wantStored(recs[q.ID])) {
		t.Error("storing a record twice changed the run")
	}
}

func TestIngestRefusesForeignRecords(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	runs, err := recordtest.Setup(ctx, st, st.Layout(), 3, "200")
	if err != nil {
		t.Fatal(err)
	}
	// Run 0 holds run 1's record; run 1 a torn file; run 2 a good record.
	slurm.WriteRecord(st.Layout().Run(runs[0].ID), recordtest.Finished(runs[1], "n", 0))
	os.WriteFile(filepath.Join(st.Layout().Run(runs[1].ID), slurm.RecordName), []byte(`{"version":1,"run":`), 0o644)
	slurm.WriteRecord(st.Layout().Run(runs[2].ID), recordtest.Finished(runs[2], "n", 0))
	tr := &slurm.Tracker{Store: st, Layout: st.Layout()}
	n, err := tr.Ingest(ctx)
	if n != 1 || !errors.Is(err, core.ErrCorrupt) {
		t.Fatalf("ingest: %d, %v; want 1 and ErrCorrupt", n, err)
	}
	for i, want := range []core.RunStatus{core.RunQueued, core.RunQueued, core.RunSucceeded} {
		if got, _ := st.Run(ctx, runs[i].ID); got.Status != want {
			t.Errorf("run %d: %s, want %s", i, got.Status, want)
		}
	}
}

// refusingStore is the store with a writer that refuses to finish one run
// and cancels its context after finishing cancelAfter runs (0: never), as a
// full disk or a killed runprov would.
type refusingStore struct {
	*sqlite.Store
	refuse      string
	cancelAfter int
	cancel      context.CancelFunc
	finished    int
}

func (s *refusingStore) WriteRecords(ctx context.Context, fn func(w core.RecordWriter) error) error {
	return s.Store.WriteRecords(ctx, func(w core.RecordWriter) error { return fn(refusingWriter{w, s}) })
}

type refusingWriter struct {
	core.RecordWriter
	s *refusingStore
}

func (w refusingWriter) FinishRun(ctx context.Context, r *core.Run) error {
	if r.ID == w.s.refuse {
		return errors.New("no space left on device")
	}
	if err := w.RecordWriter.FinishRun(ctx, r); err != nil {
		return err
	}
	if w.s.finished++; w.s.finished == w.s.cancelAfter {
		w.s.cancel()
	}
	return ctx.Err()
}

// Records are stored in batches: one the store refuses costs only itself,
// and a batch cut short stores nothing of it and leaves its records for the
// next ingest. Every record lands in the end, and the chain holds.
func TestIngestBatches(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	const n = 150
	runs, err := recordtest.Setup(ctx, st, st.Layout(), n, "400")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range runs {
		if err := slurm.WriteRecord(st.Layout().Run(q.ID), recordtest.Finished(q, "node1", 1)); err != nil {
			t.Fatal(err)
		}
	}
	// A pass killed halfway through its first batch stores nothing.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rs := &refusingStore{Store: st, cancelAfter: 50, cancel: cancel}
	if got, err := (&slurm.Tracker{Store: rs, Layout: st.Layout()}).Ingest(cctx); got != 0 || err == nil {
		t.Fatalf("ingest cut short: %d, %v; want 0 and an error", got, err)
	}
	queued, _ := st.Runs(ctx, core.RunFilter{Status: core.RunQueued})
	if len(queued) != n {
		t.Fatalf("%d runs queued after a pass cut short, want all %d", len(queued), n)
	}
	// A record the store refuses costs only itself.
	refused := runs[n-3].ID
	rs = &refusingStore{Store: st, refuse: refused}
	got, err := (&slurm.Tracker{Store: rs, Layout: st.Layout()}).Ingest(ctx)
	if got != n-1 || err == nil || !strings.Contains(err.Error(), refused) {
		t.Fatalf("ingest with run %s refused: %d, %v; want %d and an error naming it", refused, got, err, n-1)
	}
	if r, _ := st.Run(ctx, refused); r.Status != core.RunQueued {
		t.Fatalf("refused run is %s", r.Status)
	}
	if got, err := (&slurm.Tracker{Store: st, Layout: st.Layout()}).Ingest(ctx); got != 1 || err != nil {
		t.Fatalf("ingest after: %d, %v; want 1", got, err)
	}
	tasks := map[int]bool{}
	for i, q := range runs {
		r, err := st.Run(ctx, q.ID)
		if err != nil {
			t.Fatal(err)
		}
		if runJSON(t, r) != runJSON(t, wantStored(recordtest.Finished(q, "node1", 1))) {
			t.Errorf("run %d differs from its record", i)
		}
		tasks[*r.Slurm.ArrayTask] = true
	}
	if len(tasks) != n {
		t.Errorf("%d distinct array tasks stored, want %d", len(tasks), n)
	}
	var ps []core.Problem
	if err := (sqlite.ChainChecker{Store: st}).Check(ctx, func(p core.Problem) { ps = append(ps, p) }); err != nil || len(ps) > 0 {
		t.Errorf("chain after batched ingest: %v %+v", err, ps)
	}
}

// Many jobs finish at once while several runprov processes ingest: every
// record ends up stored, whole, exactly as written.
func TestConcurrentFinishAndIngest(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	const jobs = 60
	runs, err := recordtest.Setup(ctx, st, st.Layout(), jobs, "300")
	if err != nil {
		t.Fatal(err)
	}
	var writers, ingesters sync.WaitGroup
	for i, q := range runs {
		writers.Add(1)
		go func() {
			defer writers.Done()
			time.Sleep(time.Duration(i%7) * time.Millisecond)
			if err := slurm.WriteRecord(st.Layout().Run(q.ID), recordtest.Finished(q, fmt.Sprint("node", i%4), i%5)); err != nil {
				t.Error(err)
			}
		}()
	}
	done := make(chan struct{})
	for range 3 {
		// Each ingester is its own store handle, as separate processes are.
		other, err := sqlite.Open(ctx, st.Layout().Root, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		ingesters.Add(1)
		go func() {
			defer ingesters.Done()
			tr := &slurm.Tracker{Store: other, Layout: other.Layout()}
			for {
				if _, err := tr.Ingest(ctx); err != nil {
					t.Error(err)
					return
				}
				select {
				case <-done:
					return
				default:
				}
			}
		}()
	}
	writers.Wait()
	close(done)
	ingesters.Wait()
	// One last pass, as the next runprov command does.
	if _, err := (&slurm.Tracker{Store: st, Layout: st.Layout()}).Ingest(ctx); err != nil {
		t.Fatal(err)
	}
	for i, q := range runs {
		got, err := st.Run(ctx, q.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := wantStored(recordtest.Finished(q, fmt.Sprint("node", i%4), i%5))
		if runJSON(t, got) != runJSON(t, want) {
			t.Errorf("run %d after concurrent ingestion differs from its record", i)
		}
	}
}

// Refresh against the real scheduler: a pending job keeps its run queued, a
// started one makes it running on its node, scancel makes it aborted with
// the scheduler's reason, and a job no scheduler knows is aborted after the
// grace period.
func TestRefreshFollowsScheduler(t *testing.T) {
	c := slurmtest.Require(t)
	st := newStore(t)
	ctx := context.Background()
	dir := t.TempDir()
	submit := func(body string, args ...string) string {
		s, _ := slurmdrv.Script(slurmdrv.Job{Output: "/dev/null"}, body)
		p := filepath.Join(dir, "job.sh")
		os.WriteFile(p, []byte(s), 0o755)
		id, err := c.Submit(ctx, p, args...)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	pending := submit("true\n", "--begin=now+1hour")
	running := submit("sleep 300\n")
	t.Cleanup(func() { c.Cancel(context.Background(), running); c.Cancel(context.Background(), pending) })
	runs := []core.Run{recordtest.Queued(0, pending, false), recordtest.Queued(1, running, false), recordtest.Queued(2, "987654321", false)}
	now := time.Now()
	for i := range runs {
		runs[i].Created = now
		if err := st.CreateRun(ctx, &runs[i]); err != nil {
			t.Fatal(err)
		}
	}
	tr := &slurm.Tracker{Store: st, Layout: st.Layout(), Scheduler: c, Grace: time.Minute}
	status := func(i int) *core.Run {
		r, err := st.Run(ctx, runs[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	slurmtest.WaitFor(t, c, running, time.Minute, func(j slurmdrv.JobInfo) bool { return j.State == "RUNNING" })
	if _, err := tr.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if r := status(0); r.Status != core.RunQueued {
		t.Errorf("pending job's run: %s", r.Status)
	}
	if r := status(1); r.Status != core.RunRunning || r.Slurm.Node != strings.Split(host, ".")[0] || r.Slurm.Partition == "" || r.Started.IsZero() {
		t.Errorf("running job's run: %s %+v", r.Status, r.Slurm)
	}
	if r := status(2); r.Status != core.RunQueued {
		t.Errorf("unknown job's run within the grace period: %s", r.Status)
	}

	c.Cancel(ctx, pending)
	c.Cancel(ctx, running)
	slurmtest.Wait(t, c, running, time.Minute)
	tr.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if _, err := tr.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"slurm job " + pending + " CANCELLED", "slurm job " + running + " CANCELLED", "unknown to squeue and sacct"} {
		r := status(i)
		if r.Status != core.RunAborted || !strings.Contains(r.Reason, want) || r.Ended.IsZero() {
			t.Errorf("run %d: %s %q, want aborted with %q", i, r.Status, r.Reason, want)
		}
	}
	if r := status(0); !strings.Contains(r.Reason, "while pending") {
		t.Errorf("cancelled pending job's reason %q", r.Reason)
	}
}

// A job that ended moments ago without a record is waited for: its record
// may be on the way. When it lands, it wins.
func TestRefreshWaitsForLateRecord(t *testing.T) {
	c := slurmtest.Require(t)
	st := newStore(t)
	ctx := context.Background()
	s, _ := slurmdrv.Script(slurmdrv.Job{Output: "/dev/null"}, "true\n")
	p := filepath.Join(t.TempDir(), "job.sh")
	os.WriteFile(p, []byte(s), 0o755)
	id, err := c.Submit(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	slurmtest.Wait(t, c, id, time.Minute)
	q := recordtest.Queued(0, id, false)
	if err := st.CreateRun(ctx, &q); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(st.Layout().Run(q.ID), 0o755)
	tr := &slurm.Tracker{Store: st, Layout: st.Layout(), Scheduler: c, Grace: time.Hour}
	if _, err := tr.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := st.Run(ctx, q.ID); r.Status != core.RunRunning || r.Slurm.Node == "" {
		t.Fatalf("run of a job that just ended without a record: %s %+v; want running, waiting for it", r.Status, r.Slurm)
	}
	rec := recordtest.Finished(q, "node9", 1)
	slurm.WriteRecord(st.Layout().Run(q.ID), rec)
	if _, err := tr.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := st.Run(ctx, q.ID); runJSON(t, r) != runJSON(t, wantStored(rec)) {
		t.Fatalf("late record not ingested: %s %q", r.Status, r.Reason)
	}
}
