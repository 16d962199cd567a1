package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/objfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"

	"github.com/runprov/runprov/core"
)

// Salvaging reads a repository's objects without trusting what can be
// damaged: every pack is read entry by entry from its first byte (as
// `git unpack-objects` does) rather than through its index, deltas are
// resolved against what that reading found, and every object's hash is
// recomputed from its content. A pack whose index lists fewer objects than
// the pack holds still yields all of them.

var _ core.RepoSalvager = Opener{}

// rawObject is an object's type and content, its hash recomputed.
type rawObject struct {
	typ  plumbing.ObjectType
	data []byte
}

// objectScan is what reading every object of a .git directory found.
type objectScan struct {
	objects map[plumbing.Hash]rawObject
	report  core.ObjectScan
}

// ScanObjects implements core.RepoSalvager.
func (Opener) ScanObjects(ctx context.Context, tmpDir string, tarball []byte) (core.ObjectScan, error) {
	dir, err := core.MkdirTemp(tmpDir, "scan")
	if err != nil {
		return core.ObjectScan{}, err
	}
	defer os.RemoveAll(dir)
	if err := restoreDir(tarball, dir); err != nil {
		return core.ObjectScan{}, err
	}
	sc, err := scanGitDir(filepath.Join(dir, gitDirName))
	return sc.report, err
}

// Salvage implements core.RepoSalvager.
func (Opener) Salvage(ctx context.Context, tmpDir string, tarball []byte) (core.GitRepo, core.ObjectScan, error) {
	old, err := core.MkdirTemp(tmpDir, "salvage-old")
	if err != nil {
		return nil, core.ObjectScan{}, err
	}
	defer os.RemoveAll(old)
	if err := restoreDir(tarball, old); err != nil {
		return nil, core.ObjectScan{}, err
	}
	sc, err := scanGitDir(filepath.Join(old, gitDirName))
	if err != nil {
		return nil, sc.report, err
	}
	head, err := readBranchRef(filepath.Join(old, gitDirName))
	if err != nil {
		return nil, sc.report, err
	}
	dir, err := core.MkdirTemp(tmpDir, "salvage")
	if err != nil {
		return nil, sc.report, err
	}
	r, err := rebuild(dir, sc.objects, head)
	if err != nil {
		os.RemoveAll(dir)
		return nil, sc.report, err
	}
	return r, sc.report, nil
}

// rebuild writes objs into a new repository in dir, packs them, and points
// the branch at head (which may name an object that was not recovered).
func rebuild(dir string, objs map[plumbing.Hash]rawObject, head plumbing.Hash) (*Repo, error) {
	r, err := openDir(dir, nil)
	if err != nil {
		return nil, err
	}
	hashes := make([]plumbing.Hash, 0, len(objs))
	for h := range objs {
		hashes = append(hashes, h)
	}
	sort.Slice(hashes, func(i, j int) bool { return bytes.Compare(hashes[i][:], hashes[j][:]) < 0 })
	for _, h := range hashes {
		o := objs[h]
		obj := r.st.NewEncodedObject()
		obj.SetType(o.typ)
		w, err := obj.Writer()
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(o.data); err != nil {
			return nil, err
		}
		w.Close()
		if _, err := r.st.SetEncodedObject(obj); err != nil {
			return nil, fmt.Errorf("write salvaged object %s: %w", h, err)
		}
	}
	if !head.IsZero() {
		if err := r.st.SetReference(plumbing.NewHashReference(branchRef, head)); err != nil {
			return nil, fmt.Errorf("set %s: %w", branchRef, err)
		}
	}
	if err := r.compact(); err != nil {
		return nil, err
	}
	return r, nil
}

// readBranchRef reads the branch's hash from refs/heads or packed-refs
// without go-git, so a damaged object store cannot get in the way.
func readBranchRef(gitDir string) (plumbing.Hash, error) {
	data, err := os.ReadFile(filepath.Join(gitDir, filepath.FromSlash(branchRef.String())))
	if err == nil {
		s := strings.TrimSpace(string(data))
		if !plumbing.IsHash(s) {
			return plumbing.ZeroHash, fmt.Errorf("%w: %s holds %q, not a commit hash", core.ErrCorrupt, branchRef, s)
		}
		return plumbing.NewHash(s), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return plumbing.ZeroHash, err
	}
	packed, err := os.ReadFile(filepath.Join(gitDir, "packed-refs"))
	if errors.Is(err, fs.ErrNotExist) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, err
	}
	for _, line := range strings.Split(string(packed), "\n") {
		if h, name, ok := strings.Cut(line, " "); ok && name == branchRef.String() && plumbing.IsHash(h) {
			return plumbing.NewHash(h), nil
		}
	}
	return plumbing.ZeroHash, nil
}

// scanGitDir reads every loose object and every pack entry under gitDir.
func scanGitDir(gitDir string) (objectScan, error) {
	sc := objectScan{objects: map[plumbing.Hash]rawObject{}}
	objDir := filepath.Join(gitDir, "objects")
	if err := sc.scanLoose(objDir); err != nil {
		return sc, err
	}
	packs, err := filepath.Glob(filepath.Join(objDir, "pack", "pack-*.pack"))
	if err != nil {
		return sc, err
	}
	sort.Strings(packs)
	for _, p := range packs {
		if err := sc.scanPack(p); err != nil {
			return sc, err
		}
	}
	sc.report.Objects = len(sc.objects)
	return sc, nil
}

func (sc *objectScan) bad(format string, args ...any) {
	sc.report.Problems = append(sc.report.Problems, fmt.Sprintf(format, args...))
}

func (sc *objectScan) scanLoose(objDir string) error {
	dirs, err := os.ReadDir(objDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, d := range dirs {
		if !d.IsDir() || len(d.Name()) != 2 {
			continue
		}
		files, err := os.ReadDir(filepath.Join(objDir, d.Name()))
		if err != nil {
			return err
		}
		for _, f := range files {
			name := d.Name() + f.Name()
			if !plumbing.IsHash(name) {
				continue
			}
			o, err := readLoose(filepath.Join(objDir, d.Name(), f.Name()))
			if err != nil {
				sc.bad("loose object %s: %v", name, err)
				continue
			}
			if h := plumbing.ComputeHash(o.typ, o.data); h.String() != name {
				sc.bad("loose object %s: content hashes to %s", name, h)
				continue
			}
			sc.objects[plumbing.NewHash(name)] = o
		}
	}
	return nil
}

func readLoose(path string) (rawObject, error) {
	f, err := os.Open(path)
	if err != nil {
		return rawObject{}, err
	}
	defer f.Close()
	r, err := objfile.NewReader(f)
	if err != nil {
		return rawObject{}, err
	}
	defer r.Close()
	typ, _, err := r.Header()
	if err != nil {
		return rawObject{}, err
	}
	data, err := io.ReadAll(r)
	return rawObject{typ: typ, data: data}, err
}

// packEntry is one entry of a pack as read in order.
type packEntry struct {
	hdr  *packfile.ObjectHeader
	data []byte // the content, or the delta for a delta entry
}

// scanPack reads the pack at path entry by entry, resolves its deltas and
// keeps every object that results. It compares what it found with the
// pack's index and counts objects the index lacks.
func (sc *objectScan) scanPack(path string) error {
	name := filepath.Base(path)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := packfile.NewScanner(bytes.NewReader(data))
	_, count, err := s.Header()
	if err != nil {
		sc.bad("%s: %v", name, err)
		return nil
	}
	var entries []packEntry
	for i := uint32(0); i < count; i++ {
		h, err := s.NextObjectHeader()
		if err == nil {
			var buf bytes.Buffer
			if _, _, err = s.NextObject(&buf); err == nil {
				entries = append(entries, packEntry{hdr: h, data: buf.Bytes()})
				continue
			}
		}
		// Entries are found by reading the one before: the rest are gone.
		sc.bad("%s: entry %d of %d: %v", name, i+1, count, err)
		break
	}
	found := sc.resolve(name, entries)
	indexed, err := idxHashes(strings.TrimSuffix(path, ".pack") + ".idx")
	if err != nil {
		sc.bad("%s: index: %v", name, err)
		indexed = map[plumbing.Hash]bool{}
	}
	if uint32(len(indexed)) != count {
		sc.bad("%s: the pack holds %d entries, its index lists %d objects", name, count, len(indexed))
	}
	for h := range found {
		if !indexed[h] {
			sc.report.Unindexed++
		}
	}
	return nil
}

// resolve turns pack entries into objects: whole objects directly, deltas
// once their base (earlier in this pack by offset, or anywhere by hash) is
// known. It returns the hashes found in this pack.
func (sc *objectScan) resolve(name string, entries []packEntry) map[plumbing.Hash]bool {
	found := map[plumbing.Hash]bool{}
	byOffset := map[int64]rawObject{}
	keep := func(e packEntry, o rawObject) {
		h := plumbing.ComputeHash(o.typ, o.data)
		byOffset[e.hdr.Offset] = o
		sc.objects[h] = o
		found[h] = true
	}
	pending := entries
	for len(pending) > 0 {
		var next []packEntry
		for _, e := range pending {
			var base rawObject
			var ok bool
			switch e.hdr.Type {
			case plumbing.OFSDeltaObject:
				base, ok = byOffset[e.hdr.OffsetReference]
			case plumbing.REFDeltaObject:
				base, ok = sc.objects[e.hdr.Reference]
			default:
				keep(e, rawObject{typ: e.hdr.Type, data: e.data})
				continue
			}
			if !ok {
				next = append(next, e)
				continue
			}
			patched, err := packfile.PatchDelta(base.data, e.data)
			if err != nil {
				sc.bad("%s: delta at offset %d: %v", name, e.hdr.Offset, err)
				continue
			}
			keep(e, rawObject{typ: base.typ, data: patched})
		}
		if len(next) == len(pending) {
			for _, e := range next {
				sc.bad("%s: delta at offset %d: its base is missing", name, e.hdr.Offset)
			}
			break
		}
		pending = next
	}
	return found
}

// idxHashes reads the object names a pack index lists.
func idxHashes(path string) (map[plumbing.Hash]bool, error) {
	hs, err := readIdx(path)
	if err != nil {
		return nil, err
	}
	set := make(map[plumbing.Hash]bool, len(hs))
	for _, h := range hs {
		set[h] = true
	}
	return set, nil
}
