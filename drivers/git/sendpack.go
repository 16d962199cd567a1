package git

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"

	"github.com/runprov/runprov/core"
)

// A push sends the pack git's send-pack would: the objects of the new
// commits minus those the remote's old head already holds. go-git's push
// walks the whole history the remote has to leave it out and recompresses
// every object it sends (one fresh zlib state per object); here the walk
// stops at the remote's head and every object is copied from the local
// packs as it is stored. The remote checks every object and the ref's old
// value as it does for git's own pushes.

// pushObjects lists the objects a remote at have (zero: empty, or a commit
// this repository lacks) needs to hold head: the new commits, and their
// trees and blobs that the trees of the commits below them lack.
func (r *Repo) pushObjects(ctx context.Context, head, have plumbing.Hash) ([]plumbing.Hash, error) {
	from := ""
	if !have.IsZero() {
		if _, err := r.commitObject(have); err == nil {
			from = have.String()
		}
	}
	commits, err := r.newCommits(ctx, from, head.String())
	if err != nil {
		return nil, err
	}
	isNew := make(map[plumbing.Hash]bool, len(commits))
	for _, c := range commits {
		isNew[c.Hash] = true
	}
	w := &treeWalk{r: r, skip: map[plumbing.Hash]bool{}, seen: map[plumbing.Hash]bool{}}
	for _, c := range commits {
		for _, p := range c.ParentHashes {
			if isNew[p] || w.skip[p] {
				continue
			}
			w.skip[p] = true
			pc, err := r.commitObject(p)
			if err != nil {
				return nil, fmt.Errorf("read commit %s: %w", p, err)
			}
			if err := w.mark(pc.TreeHash); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range commits {
		w.out = append(w.out, c.Hash)
		if err := w.add(c.TreeHash); err != nil {
			return nil, err
		}
	}
	return w.out, nil
}

// treeWalk collects the trees and blobs to send (out), leaving out what
// the remote holds (skip).
type treeWalk struct {
	r    *Repo
	skip map[plumbing.Hash]bool
	seen map[plumbing.Hash]bool
	out  []plumbing.Hash
}

// mark adds tree h and everything in it to skip.
func (w *treeWalk) mark(h plumbing.Hash) error {
	if w.skip[h] {
		return nil
	}
	w.skip[h] = true
	t, err := w.r.repo.TreeObject(h)
	if err != nil {
		return fmt.Errorf("read tree %s: %w", h, err)
	}
	for _, e := range t.Entries {
		switch e.Mode {
		case filemode.Dir:
			if err := w.mark(e.Hash); err != nil {
				return err
			}
		case filemode.Submodule:
		default:
			w.skip[e.Hash] = true
		}
	}
	return nil
}

// add appends tree h and what it holds that is neither skipped nor seen.
func (w *treeWalk) add(h plumbing.Hash) error {
	if w.skip[h] || w.seen[h] {
		return nil
	}
	w.seen[h] = true
	w.out = append(w.out, h)
	t, err := w.r.repo.TreeObject(h)
	if err != nil {
		return fmt.Errorf("read tree %s: %w", h, err)
	}
	for _, e := range t.Entries {
		switch e.Mode {
		case filemode.Dir:
			if err := w.add(e.Hash); err != nil {
				return err
			}
		case filemode.Submodule:
		default:
			if !w.skip[e.Hash] && !w.seen[e.Hash] {
				w.seen[e.Hash] = true
				w.out = append(w.out, e.Hash)
			}
		}
	}
	return nil
}

// storedAt is where one object is stored: bytes [off, end) of a pack.
type storedAt struct {
	pack     *rawPack
	off, end int64
}

// rawPack is a pack file read into memory, with its objects by offset.
type rawPack struct {
	data   []byte
	hashAt map[int64]plumbing.Hash
}

// packEntries locates every packed object of the repository.
func (r *Repo) packEntries() (map[plumbing.Hash]storedAt, error) {
	packs, err := r.st.ObjectPacks()
	if err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	at := map[plumbing.Hash]storedAt{}
	for _, ph := range packs {
		entries, err := readIdxEntries(r.idxPath(ph))
		if err != nil {
			return nil, fmt.Errorf("read pack index %s: %w", ph, err)
		}
		data, err := os.ReadFile(filepath.Join(r.dir, gitDirName, "objects", "pack", "pack-"+ph.String()+".pack"))
		if err != nil {
			return nil, fmt.Errorf("read pack %s: %w", ph, err)
		}
		if len(data) < 12+20 {
			return nil, fmt.Errorf("%w: pack %s is truncated", core.ErrCorrupt, ph)
		}
		p := &rawPack{data: data, hashAt: make(map[int64]plumbing.Hash, len(entries))}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Offset < entries[j].Offset })
		for i, e := range entries {
			end := int64(len(data) - 20)
			if i+1 < len(entries) {
				end = int64(entries[i+1].Offset)
			}
			if int64(e.Offset) < 12 || int64(e.Offset) >= end || end > int64(len(data)-20) {
				return nil, fmt.Errorf("%w: pack %s: bad offset for %s", core.ErrCorrupt, ph, e.Hash)
			}
			p.hashAt[int64(e.Offset)] = e.Hash
			if _, dup := at[e.Hash]; !dup {
				at[e.Hash] = storedAt{pack: p, off: int64(e.Offset), end: end}
			}
		}
	}
	return at, nil
}

// packWriter writes one pack stream of a known set of objects.
type packWriter struct {
	r       *Repo
	at      map[plumbing.Hash]storedAt
	send    map[plumbing.Hash]bool
	written map[plumbing.Hash]bool
	buf     bytes.Buffer
	zw      *zlib.Writer
}

// encodePack returns a pack holding objs. A stored object is copied as it
// is; a delta whose base is sent too goes as a delta against that base
// (written first), and any other object is written whole.
func (r *Repo) encodePack(objs []plumbing.Hash) ([]byte, error) {
	at, err := r.packEntries()
	if err != nil {
		return nil, err
	}
	w := &packWriter{r: r, at: at, send: make(map[plumbing.Hash]bool, len(objs)), written: make(map[plumbing.Hash]bool, len(objs))}
	for _, h := range objs {
		w.send[h] = true
	}
	w.buf.WriteString("PACK")
	binary.Write(&w.buf, binary.BigEndian, [2]uint32{2, uint32(len(w.send))})
	for _, h := range objs {
		if err := w.object(h, 0); err != nil {
			return nil, err
		}
	}
	sum := sha1.Sum(w.buf.Bytes())
	w.buf.Write(sum[:])
	return w.buf.Bytes(), nil
}

// maxDeltaDepth bounds the bases written ahead of a delta; git's own
// chains are at most 50 deep.
const maxDeltaDepth = 100

// object writes h unless it was written, its delta base first.
func (w *packWriter) object(h plumbing.Hash, depth int) error {
	if w.written[h] {
		return nil
	}
	w.written[h] = true
	e, ok := w.at[h]
	if !ok || depth > maxDeltaDepth {
		return w.whole(h)
	}
	raw := e.pack.data[e.off:e.end]
	typ, size, n, ok := entryHeader(raw)
	if !ok {
		return w.whole(h)
	}
	var base plumbing.Hash
	switch typ {
	case plumbing.CommitObject, plumbing.TreeObject, plumbing.BlobObject, plumbing.TagObject:
		w.buf.Write(raw)
		return nil
	case plumbing.OFSDeltaObject:
		rel, m, ok := ofsDeltaOffset(raw[n:])
		if !ok {
			return w.whole(h)
		}
		base, ok = e.pack.hashAt[e.off-rel]
		if !ok {
			return w.whole(h)
		}
		n += m
	case plumbing.REFDeltaObject:
		if len(raw) < n+20 {
			return w.whole(h)
		}
		copy(base[:], raw[n:n+20])
		n += 20
	default:
		return w.whole(h)
	}
	if !w.send[base] {
		return w.whole(h)
	}
	if err := w.object(base, depth+1); err != nil {
		return err
	}
	w.buf.Write(appendEntryHeader(nil, plumbing.REFDeltaObject, size))
	w.buf.Write(base[:])
	w.buf.Write(raw[n:])
	return nil
}

// whole writes object h in full, read through go-git's storage.
func (w *packWriter) whole(h plumbing.Hash) error {
	obj, err := w.r.st.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return fmt.Errorf("read object %s: %w", h, err)
	}
	rd, err := obj.Reader()
	if err != nil {
		return fmt.Errorf("read object %s: %w", h, err)
	}
	defer rd.Close()
	w.buf.Write(appendEntryHeader(nil, obj.Type(), obj.Size()))
	// BestSpeed: resetting it is cheap, unlike the default level's tables.
	if w.zw == nil {
		if w.zw, err = zlib.NewWriterLevel(&w.buf, zlib.BestSpeed); err != nil {
			return err
		}
	} else {
		w.zw.Reset(&w.buf)
	}
	if _, err := io.Copy(w.zw, rd); err != nil {
		return fmt.Errorf("read object %s: %w", h, err)
	}
	return w.zw.Close()
}

// entryHeader parses a pack entry's type and size; n is its length.
func entryHeader(b []byte) (typ plumbing.ObjectType, size int64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, 0, false
	}
	c := b[0]
	typ, size, n = plumbing.ObjectType((c>>4)&7), int64(c&15), 1
	for shift := 4; c&0x80 != 0; shift += 7 {
		if n >= len(b) || shift > 56 {
			return 0, 0, 0, false
		}
		c = b[n]
		n++
		size |= int64(c&0x7f) << shift
	}
	return typ, size, n, true
}

// ofsDeltaOffset parses the distance back to an OFS_DELTA's base.
func ofsDeltaOffset(b []byte) (rel int64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	c := b[0]
	rel, n = int64(c&0x7f), 1
	for c&0x80 != 0 {
		if n >= len(b) || n > 8 {
			return 0, 0, false
		}
		c = b[n]
		n++
		rel = ((rel + 1) << 7) | int64(c&0x7f)
	}
	return rel, n, rel > 0
}

// appendEntryHeader appends a pack entry's type and size.
func appendEntryHeader(dst []byte, typ plumbing.ObjectType, size int64) []byte {
	c := byte(typ)<<4 | byte(size&15)
	size >>= 4
	for size > 0 {
		dst = append(dst, c|0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	return append(dst, c)
}

// readIdxEntries lists the objects and offsets a pack index file names.
func readIdxEntries(path string) ([]*idxfile.Entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	idx := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(bytes.NewReader(data)).Decode(idx); err != nil {
		return nil, err
	}
	it, err := idx.Entries()
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*idxfile.Entry
	for {
		e, err := it.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}
