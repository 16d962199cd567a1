package sqlite

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// buildChain chains every finished run and every event that a store held
// when it was upgraded to the chain's schema, oldest first (runs by end
// time, events by time), each marked migrated. It runs in the migration's
// transaction, so a store never has the table without its entries.
func buildChain(ctx context.Context, q querier, now time.Time) error {
	digests, err := rowDigests(ctx, q)
	if err != nil {
		return err
	}
	type item struct {
		chainKey
		rowDigest
	}
	var items []item
	for k, d := range digests {
		if d.finished {
			items = append(items, item{k, d})
		}
	}
	kindOrder := map[string]int{chainConfigEvent: 0, chainImageEvent: 1, chainRun: 2, chainRunEvent: 3}
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(kindOrder[a.kind], kindOrder[b.kind]),
			cmp.Compare(len(a.key), len(b.key)), cmp.Compare(a.key, b.key))
	})
	prev, at := "", timeText(now)
	for i, it := range items {
		e := chainEntry{seq: int64(i + 1), chainKey: it.chainKey, entry: it.sum, prev: prev, chainedAt: at, migrated: true}
		if err := insertChainEntry(ctx, q, &e); err != nil {
			return err
		}
		prev = e.sum
	}
	return nil
}
