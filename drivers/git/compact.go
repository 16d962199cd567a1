package git

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"

	"github.com/runprov/runprov/core"
)

// The object store is kept to a few files so that restoring and archiving a
// repository costs about the same at the 1000th commit as at the 10th:
// creating directories and files, not copying bytes, dominates a restore.
//
// After every commit its new loose objects go into one new pack. Packs are
// then merged geometrically (as `git repack --geometric=2` does): the
// smallest packs are merged while the next one holds fewer than twice the
// objects merged so far. Each object is rewritten O(log n) times and the
// number of packs stays O(log n); a full repack of every object, which costs
// ~0.4 s at 1000 commits, never runs on an add.
//
// A merge waits until minMerge packs qualify: each add or pull then writes
// its own small pack, and only every few of them pays for a merge (as git
// leaves packs alone up to gc.autoPackLimit).
const (
	geometricFactor = 2
	minMerge        = 4
)

func (r *Repo) compact() error {
	var all []plumbing.Hash
	if err := r.st.ForEachObjectHash(func(h plumbing.Hash) error {
		all = append(all, h)
		return nil
	}); err != nil {
		return fmt.Errorf("list loose objects: %w", err)
	}
	// go-git writes every object loose, even one a pack already holds (a
	// Runfile reverted to an earlier version, a tree seen before). Such a
	// copy is deleted, not packed again. A fetch leaves nothing loose, and
	// then the packs' indexes need not be read.
	var packed map[plumbing.Hash]struct{}
	if len(all) > 0 {
		var err error
		if packed, err = r.packedAmong(all); err != nil {
			return err
		}
	}
	var loose, redundant []plumbing.Hash
	for _, h := range all {
		if _, ok := packed[h]; ok {
			redundant = append(redundant, h)
		} else {
			loose = append(loose, h)
		}
	}
	if len(loose) > 0 {
		if err := r.writePack(loose); err != nil {
			return err
		}
	}
	if len(loose)+len(redundant) > 0 {
		if err := r.deleteLoose(append(loose, redundant...)); err != nil {
			return err
		}
		if err := r.reopen(); err != nil {
			return err
		}
	}
	if err := r.mergePacks(); err != nil {
		return err
	}
	// go-git's storage caches the pack list and open pack files; a fresh
	// storage sees the new packs and forgets the deleted ones.
	return r.reopen()
}

// deleteLoose removes loose objects that a pack now holds.
func (r *Repo) deleteLoose(objs []plumbing.Hash) error {
	for _, h := range objs {
		if err := r.st.DeleteLooseObject(h); err != nil {
			return fmt.Errorf("delete packed loose object %s: %w", h, err)
		}
		// Fails harmlessly while the directory still holds an object.
		os.Remove(filepath.Join(r.dir, gitDirName, "objects", h.String()[:2]))
	}
	return nil
}

// packedAmong is the set of objs that the repository's packs hold, found
// by binary search in each pack index rather than by decoding them all.
func (r *Repo) packedAmong(objs []plumbing.Hash) (map[plumbing.Hash]struct{}, error) {
	hashes, err := r.st.ObjectPacks()
	if err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	set := make(map[plumbing.Hash]struct{})
	for _, p := range hashes {
		idx, err := os.ReadFile(r.idxPath(p))
		if err != nil {
			return nil, fmt.Errorf("read pack index: %w", err)
		}
		for _, h := range objs {
			ok, err := idxHas(idx, h)
			if err != nil {
				return nil, fmt.Errorf("read pack index %s: %w", p, err)
			}
			if ok {
				set[h] = struct{}{}
			}
		}
	}
	return set, nil
}

// idxHas says whether the version 2 pack index idx names h: the fanout
// table bounds the run of names starting with h's first byte, and the
// names are sorted.
func idxHas(idx []byte, h plumbing.Hash) (bool, error) {
	const header, fanout = 8, 256 * 4
	if len(idx) < header+fanout || !bytes.Equal(idx[:8], []byte{0xff, 't', 'O', 'c', 0, 0, 0, 2}) {
		return false, fmt.Errorf("%w: not a version 2 pack index", core.ErrCorrupt)
	}
	at := func(i int) int { return int(binary.BigEndian.Uint32(idx[header+4*i:])) }
	lo, hi := 0, at(int(h[0]))
	if h[0] > 0 {
		lo = at(int(h[0]) - 1)
	}
	names := idx[header+fanout:]
	if lo > hi || hi*20 > len(names) {
		return false, fmt.Errorf("%w: pack index fanout out of range", core.ErrCorrupt)
	}
	i := sort.Search(hi-lo, func(i int) bool { return bytes.Compare(names[(lo+i)*20:(lo+i+1)*20], h[:]) >= 0 })
	return lo+i < hi && bytes.Equal(names[(lo+i)*20:(lo+i+1)*20], h[:]), nil
}

// writePack writes objs into one new pack (and its index). Each object goes
// in once: packfile.Encoder writes a repeated hash twice, and the pack then
// holds more entries than its index, which breaks every reader, git's too.
func (r *Repo) writePack(objs []plumbing.Hash) error {
	objs = uniqueHashes(objs)
	w, err := r.st.PackfileWriter()
	if err != nil {
		return fmt.Errorf("write pack: %w", err)
	}
	if _, err := packfile.NewEncoder(w, r.st, false).Encode(objs, 10); err != nil {
		w.Close()
		return fmt.Errorf("write pack: %w", err)
	}
	// Close writes the index; only then are the source copies redundant.
	if err := w.Close(); err != nil {
		return fmt.Errorf("write pack: %w", err)
	}
	return nil
}

// uniqueHashes drops repeated hashes, keeping the first of each in order.
func uniqueHashes(hs []plumbing.Hash) []plumbing.Hash {
	seen := make(map[plumbing.Hash]struct{}, len(hs))
	out := hs[:0:0]
	for _, h := range hs {
		if _, ok := seen[h]; !ok {
			seen[h] = struct{}{}
			out = append(out, h)
		}
	}
	return out
}

type packInfo struct {
	hash  plumbing.Hash
	count int
}

// mergePacks merges the smallest packs into one as the geometric rule says.
func (r *Repo) mergePacks() error {
	hashes, err := r.st.ObjectPacks()
	if err != nil {
		return fmt.Errorf("list packs: %w", err)
	}
	if len(hashes) < 2 {
		return nil
	}
	packs := make([]packInfo, 0, len(hashes))
	for _, h := range hashes {
		n, err := r.packCount(h)
		if err != nil {
			return err
		}
		packs = append(packs, packInfo{hash: h, count: n})
	}
	sort.Slice(packs, func(i, j int) bool { return packs[i].count < packs[j].count })
	merge, total := 1, packs[0].count
	for merge < len(packs) && packs[merge].count < geometricFactor*total {
		total += packs[merge].count
		merge++
	}
	if merge < minMerge {
		return nil
	}
	var objs []plumbing.Hash
	for _, p := range packs[:merge] {
		o, err := r.packObjects(p.hash)
		if err != nil {
			return err
		}
		objs = append(objs, o...)
	}
	if err := r.writePack(objs); err != nil {
		return err
	}
	for _, p := range packs[:merge] {
		if err := r.st.DeleteOldObjectPackAndIndex(p.hash, time.Time{}); err != nil {
			return fmt.Errorf("delete merged pack %s: %w", p.hash, err)
		}
	}
	return nil
}

func (r *Repo) idxPath(h plumbing.Hash) string {
	return filepath.Join(r.dir, gitDirName, "objects", "pack", "pack-"+h.String()+".idx")
}

// packCount reads the number of objects in pack h from its index: the last
// entry of the fanout table of a version 2 index.
func (r *Repo) packCount(h plumbing.Hash) (int, error) {
	f, err := os.Open(r.idxPath(h))
	if err != nil {
		return 0, fmt.Errorf("read pack index: %w", err)
	}
	defer f.Close()
	var b [4]byte
	const lastFanout = 8 + 255*4 // magic, version, fanout[0..254]
	if _, err := f.ReadAt(b[:], lastFanout); err != nil {
		return 0, fmt.Errorf("read pack index %s: %w", h, err)
	}
	return int(binary.BigEndian.Uint32(b[:])), nil
}

// packObjects lists the objects of pack h from its index.
func (r *Repo) packObjects(h plumbing.Hash) ([]plumbing.Hash, error) {
	objs, err := readIdx(r.idxPath(h))
	if err != nil {
		return nil, fmt.Errorf("read pack index %s: %w", h, err)
	}
	return objs, nil
}

// readIdx lists the objects a pack index file names.
func readIdx(path string) ([]plumbing.Hash, error) {
	entries, err := readIdxEntries(path)
	if err != nil {
		return nil, err
	}
	objs := make([]plumbing.Hash, len(entries))
	for i, e := range entries {
		objs[i] = e.Hash
	}
	return objs, nil
}
