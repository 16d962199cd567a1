package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestAppendConcurrent: writers racing for the next number each get one,
// and every entry names the hash of the one before it.
func TestAppendConcurrent(t *testing.T) {
	ctx := context.Background()
	s := &Spool{Dir: t.TempDir()}
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Append(ctx, func(seq int, prev string) ([]byte, error) {
				return []byte(fmt.Sprintf("%d %s", seq, prev)), nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	entries, err := s.Log(ctx)
	if err != nil || len(entries) != 8 {
		t.Fatalf("%d entries, %v", len(entries), err)
	}
	prev := ""
	for i, e := range entries {
		if want := fmt.Sprintf("%d %s", i+1, prev); e.Seq != i+1 || string(e.Data) != want {
			t.Errorf("entry %d: %d %q, want %q", i, e.Seq, e.Data, want)
		}
		prev = Sum(e.Data)
	}
}

// TestPutRequest: a request is whole and read-only; one whose file changed
// since it was hashed is refused and leaves nothing behind.
func TestPutRequest(t *testing.T) {
	ctx := context.Background()
	s := &Spool{Dir: t.TempDir()}
	s.Ready(ctx)
	content := []byte("a,b\n1,2\n")
	open := func(b []byte) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	sum := Sum(content)
	if err := s.PutRequest(ctx, "r1", map[string][]byte{"request.json": []byte("{}")}, map[string]func() (io.ReadCloser, error){sum: open(content)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadRequestFile(ctx, "r1", "files/"+sum)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("%q %v", got, err)
	}
	fi, _ := os.Stat(filepath.Join(s.Dir, "requests", "r1", "files", sum))
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("snapshot mode %v, want read-only", fi.Mode())
	}
	if err := s.PutRequest(ctx, "r1", nil, nil); !errors.Is(err, os.ErrExist) {
		t.Errorf("second r1: %v", err)
	}
	err = s.PutRequest(ctx, "r2", nil, map[string]func() (io.ReadCloser, error){sum: open([]byte("changed"))})
	if err == nil {
		t.Error("a changed file was snapshot")
	}
	if ids, _ := s.RequestIDs(ctx); len(ids) != 1 {
		t.Errorf("requests %v, want only r1", ids)
	}
	if _, err := s.ReadRequestFile(ctx, "r1", "../r2"); err == nil {
		t.Error("a path out of the request was read")
	}
}
