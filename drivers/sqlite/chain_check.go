package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/runprov/runprov/core"
)

// ChainChecker checks the hash chain for runprov fsck: it derives every
// entry again from the rows and names what was edited, deleted, inserted or
// reordered since it was chained.
type ChainChecker struct{ Store *Store }

// Check reads the chain and the rows in one
// read transaction, so that writes made meanwhile are not taken for tampering.
func (c ChainChecker) Check(ctx context.Context, report func(core.Problem)) error {
	conn, err := c.Store.db.Conn(ctx)
	if err != nil {
		return mapErr(err)
	}
	defer conn.Close()
	if err := bigCache(ctx, conn); err != nil {
		return fmt.Errorf("check chain: %w", mapErr(err))
	}
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("check chain: %w", mapErr(err))
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	entries, err := readChain(ctx, conn)
	if err != nil {
		return err
	}
	checkLinks(entries, report)
	digests, err := c.digests(ctx, conn)
	if err != nil {
		return fmt.Errorf("check chain: %w", err)
	}
	checkEntries(entries, digests, report)
	return checkSignedHeads(ctx, conn, entries, report)
}

// digests is rowDigests, with runs read on two cores when a second read
// transaction can see the same snapshot (always, but for a write between
// the two starts).
func (c ChainChecker) digests(ctx context.Context, conn *sql.Conn) (map[chainKey]rowDigest, error) {
	out := map[chainKey]rowDigest{}
	split, err := c.Store.runDigestsSplit(ctx, conn, out)
	if err != nil {
		return nil, err
	}
	if !split {
		return rowDigests(ctx, conn)
	}
	if err := allEventDigests(ctx, conn, out); err != nil {
		return nil, err
	}
	return out, nil
}

func readChain(ctx context.Context, q querier) ([]chainEntry, error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, kind, key, entry_sha256, prev_sha256, sha256, chained_at, migrated FROM chain ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("read chain: %w", mapErr(err))
	}
	defer rows.Close()
	var out []chainEntry
	for rows.Next() {
		var e chainEntry
		if err := rows.Scan(&e.seq, &e.kind, &e.key, &e.entry, &e.prev, &e.sum, &e.chainedAt, &e.migrated); err != nil {
			return nil, fmt.Errorf("read chain: %w", err)
		}
		out = append(out, e)
	}
	return out, mapErr(rows.Err())
}

// checkLinks walks the chain: each entry must follow the one before it
// (seq and prev_sha256) and hash to its stored sha256. After a break it
// goes on from the stored hashes, so one change is reported once.
func checkLinks(entries []chainEntry, report func(core.Problem)) {
	var prev chainEntry
	for i, e := range entries {
		where := core.Problem{Where: fmt.Sprintf("chain entry %d", e.seq)}
		switch {
		case i == 0 && e.seq != 1:
			where.What = fmt.Sprintf("entries 1 to %d are missing (deleted from the chain)", e.seq-1)
		case i > 0 && e.seq != prev.seq+1:
			where.What = fmt.Sprintf("entries %d to %d are missing (deleted from the chain)", prev.seq+1, e.seq-1)
		case i == 0 && e.prev != "", i > 0 && e.prev != prev.sum:
			where.What = fmt.Sprintf("%s: the link to entry %d breaks here (entries were reordered, inserted or deleted)", e.chainKey, e.seq-1)
		case e.linkHash() != e.sum:
			where.What = fmt.Sprintf("%s: the chain row was edited (its sha256 does not match its fields)", e.chainKey)
		}
		if where.What != "" {
			report(where)
		}
		prev = e
	}
}

// checkEntries compares the newest entry of each key with its row, then
// names the rows that should be chained and are not.
func checkEntries(entries []chainEntry, digests map[chainKey]rowDigest, report func(core.Problem)) {
	newest := map[chainKey]int{}
	for i, e := range entries {
		newest[e.chainKey] = i
	}
	for i, e := range entries {
		if newest[e.chainKey] != i {
			continue // superseded: the run was stored again later
		}
		d, ok := digests[e.chainKey]
		var what string
		switch {
		case !ok:
			what = fmt.Sprintf("%s is missing (deleted after it was chained)", e.chainKey)
		case d.sum != e.entry:
			what = fmt.Sprintf("%s's canonical hash differs (%s changed after it was chained)", e.chainKey, editedWhat(e.kind))
		default:
			continue
		}
		if e.migrated && len(e.chainedAt) >= 10 {
			what += fmt.Sprintf("; chained at migration on %s", e.chainedAt[:10])
		}
		report(core.Problem{Where: fmt.Sprintf("chain entry %d", e.seq), What: what})
	}
	var unchained []chainKey
	for k, d := range digests {
		if _, ok := newest[k]; !ok && d.finished {
			unchained = append(unchained, k)
		}
	}
	slices.SortFunc(unchained, func(a, b chainKey) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(len(a.key), len(b.key)), cmp.Compare(a.key, b.key))
	})
	for _, k := range unchained {
		report(core.Problem{Where: k.String(), What: "not in the chain (inserted without runprov, or its chain entry was removed)"})
	}
}

func editedWhat(kind string) string {
	if kind == chainRun {
		return "its row, steps or files were"
	}
	return "its row was"
}

// bigCache lets conn keep up to 256 MiB of pages (SQLite's default is 2 MiB)
// until it is closed: reading steps and files in run order jumps around the
// tables, and each page would otherwise be read again from the file many times.
//
// It also maps up to 1 GiB of the file into memory, so that pages come
// without a read system call and a copy each (a tenth of a check's time).
func bigCache(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "PRAGMA cache_size = -262144"); err != nil {
		return err
	}
	_, err := conn.ExecContext(ctx, "PRAGMA mmap_size = 1073741824")
	return err
}
