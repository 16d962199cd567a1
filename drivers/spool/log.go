package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/runprov/runprov/core"
)

// Log returns every log entry in order. Names that are not numbers are
// listed with Seq 0, so that a checker of the log can refuse them.
func (s *Spool) Log(ctx context.Context) ([]core.SpoolEntry, error) {
	dir := filepath.Join(s.Dir, logDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("release log: %w", err)
	}
	var out []core.SpoolEntry
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".tmp-") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("release log: %w", err)
		}
		seq, _ := strconv.Atoi(strings.TrimSuffix(n, ".json"))
		if n != logName(seq) {
			seq = 0
		}
		out = append(out, core.SpoolEntry{Seq: seq, Name: n, Data: data})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func logName(seq int) string { return fmt.Sprintf("%08d.json", seq) }

// Append adds an entry after the last: build is given the next number and
// the hex sha256 of the last entry's bytes ("" for the first) and returns
// the entry's bytes. When another writer takes the number first, Append
// reads the log again and calls build again.
func (s *Spool) Append(ctx context.Context, build func(seq int, prev string) ([]byte, error)) (int, error) {
	dir := filepath.Join(s.Dir, logDir)
	for try := 0; try < 50; try++ {
		entries, err := s.Log(ctx)
		if err != nil {
			return 0, err
		}
		seq, prev := 1, ""
		if n := len(entries); n > 0 {
			seq, prev = entries[n-1].Seq+1, Sum(entries[n-1].Data)
		}
		data, err := build(seq, prev)
		if err != nil {
			return 0, err
		}
		err = putExclusive(dir, logName(seq), data)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("release log: %w", err)
		}
		return seq, nil
	}
	return 0, fmt.Errorf("release log: %w: too many concurrent writers", os.ErrExist)
}
