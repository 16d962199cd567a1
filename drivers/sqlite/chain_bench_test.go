package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
)

// BenchmarkChainCheck checks the chain of 20,000 synthetic runs (run
// with -cpuprofile to see where a check spends its time).
func BenchmarkChainCheck(b *testing.B) {
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "store")
	old, err := InitAtVersion(ctx, dir, nil, 6)
	if err != nil {
		b.Fatal(err)
	}
	if err := sqlitetest.InsertSynthetic(ctx, old.DB(), 0, 20_000, 2, false); err != nil {
		b.Fatal(err)
	}
	old.Close()
	st, err := Open(ctx, dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ResetTimer()
	for b.Loop() {
		problems := 0
		if err := (ChainChecker{Store: st}).Check(ctx, func(core.Problem) { problems++ }); err != nil || problems > 0 {
			b.Fatalf("check: %v, %d problems", err, problems)
		}
	}
}
