package sqlite

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
)

func newImageTestStore(t *testing.T) *Store {
	t.Helper()
	s, _, err := Init(context.Background(), t.TempDir(), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

const (
	testIndex    = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	testManifest = "sha256:1122222222222222222222222222222222222222222222222222222222222222"
)

func TestImageRecords(t *testing.T) {
	ctx := context.Background()
	s := newImageTestStore(t)
	clock := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	who := core.ImageEvent{User: "alice", UID: 1000}

	recs := []core.ImageRecord{
		{Digest: testIndex, MediaType: core.MediaTypeOCIIndex, Source: "oci-archive:/x.tar", Size: 10},
		{Digest: testManifest, MediaType: core.MediaTypeOCIManifest, Source: "oci-archive:/x.tar", Platform: "linux/amd64",
			ConfigDigest: "sha256:c", IndexDigest: testIndex, Size: 9},
	}
	ev := who
	ev.Event, ev.Note = core.ImageEventImport, "oci-archive:/x.tar"
	if err := s.PutImageRecords(ctx, recs, ev); err != nil {
		t.Fatal(err)
	}
	// A second import keeps the row and gains a ref it lacked.
	recs[0].Ref, recs[0].Source = "example.org/x:1", "registry:example.org/x:1"
	if err := s.PutImageRecords(ctx, recs[:1], ev); err != nil {
		t.Fatal(err)
	}
	got, err := s.ImageRecord(ctx, testIndex)
	if err != nil {
		t.Fatal(err)
	}
	if got.Ref != "example.org/x:1" || got.Source != "oci-archive:/x.tar" || got.Approved {
		t.Errorf("after re-import: %+v", got)
	}

	if _, err := s.ImageRecord(ctx, "sha256:00"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("missing image: %v, want ErrNotFound", err)
	}
	for prefix, want := range map[string]int{"sha256:11": 2, "sha256:112": 1, "sha256:3": 0} {
		ds, err := s.ImageDigests(ctx, prefix, 5)
		if err != nil || len(ds) != want {
			t.Errorf("ImageDigests(%s) = %v, %v; want %d", prefix, ds, err, want)
		}
	}

	ev.Event, ev.Note = core.ImageEventApprove, "reviewed by the panel"
	if err := s.SetImageApproval(ctx, testManifest, true, ev); err != nil {
		t.Fatal(err)
	}
	got, _ = s.ImageRecord(ctx, testManifest)
	if !got.Approved || got.ApprovalNote != "reviewed by the panel" || got.ApprovedBy != "alice" || got.ApprovedAt.IsZero() {
		t.Errorf("after approve: %+v", got)
	}
	ev.Event, ev.Note = core.ImageEventRevoke, "CVE"
	if err := s.SetImageApproval(ctx, testManifest, false, ev); err != nil {
		t.Fatal(err)
	}
	got, _ = s.ImageRecord(ctx, testManifest)
	if got.Approved || !got.ApprovedAt.IsZero() || got.ApprovalNote != "CVE" {
		t.Errorf("after revoke: %+v", got)
	}
	if err := s.SetImageApproval(ctx, "sha256:99", true, ev); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("approve missing: %v", err)
	}

	all, err := s.ImageRecords(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("ImageRecords = %v, %v", all, err)
	}
	ev.Event, ev.Note = core.ImageEventRemove, ""
	if err := s.RemoveImageRecords(ctx, []string{testManifest, testIndex}, ev); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.ImageRecords(ctx); len(all) != 0 {
		t.Errorf("after rm: %v", all)
	}

	evs, err := s.ImageEvents(ctx, testManifest)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for i, e := range evs {
		kinds = append(kinds, e.Event+":"+e.Note)
		if e.User != "alice" || e.UID != 1000 || e.At.IsZero() || (i > 0 && !e.At.After(evs[i-1].At)) {
			t.Errorf("event %+v", e)
		}
	}
	if want := "import:oci-archive:/x.tar approve:reviewed by the panel revoke:CVE rm:"; strings.Join(kinds, " ") != want {
		t.Errorf("events of the manifest: %q\nwant %q", strings.Join(kinds, " "), want)
	}
	if all, _ := s.ImageEvents(ctx, ""); len(all) != 7 {
		t.Errorf("all events: %d, want 7", len(all))
	}
}

// The images tables are readable through `runprov query`.
func TestImageTablesQueryable(t *testing.T) {
	s := newImageTestStore(t)
	w := &imageQueryRows{}
	if err := s.Query(context.Background(), "SELECT digest, event, at, user, uid, note FROM image_events", w); err != nil {
		t.Fatal(err)
	}
	if strings.Join(w.cols, ",") != "digest,event,at,user,uid,note" {
		t.Errorf("columns %v", w.cols)
	}
	if err := s.Query(context.Background(), "DELETE FROM images", w); !errors.Is(err, core.ErrReadOnly) {
		t.Errorf("DELETE through query: %v", err)
	}
}

type imageQueryRows struct {
	cols []string
	rows [][]any
}

func (c *imageQueryRows) Header(cols []string) error { c.cols = cols; return nil }
func (c *imageQueryRows) Row(v []any) error {
	c.rows = append(c.rows, append([]any(nil), v...))
	return nil
}
