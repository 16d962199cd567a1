package git

import (
	"fmt"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

// The object store is kept small in files so that restoring and archiving a
// repository costs about the same at the 1000th commit as at the 10th:
// loose objects are packed once there are looseLimit of them, and the packs
// are merged into one once there are packLimit of them. Each add writes 3
// loose objects (blob, tree, commit) per path level, so a merge happens every
// ~looseLimit*packLimit/3 adds.
const (
	looseLimit = 64
	packLimit  = 16
)

func (r *Repo) compact() error {
	var loose []plumbing.Hash
	if err := r.st.ForEachObjectHash(func(h plumbing.Hash) error {
		loose = append(loose, h)
		return nil
	}); err != nil {
		return fmt.Errorf("list loose objects: %w", err)
	}
	if len(loose) < looseLimit {
		return nil
	}
	packs, err := r.st.ObjectPacks()
	if err != nil {
		return fmt.Errorf("list packs: %w", err)
	}
	if len(packs)+1 >= packLimit {
		err = r.repo.RepackObjects(&gogit.RepackConfig{})
	} else {
		err = r.packLoose(loose)
	}
	if err != nil {
		return err
	}
	// go-git's storage caches the pack list and open pack files; a fresh
	// storage sees the new pack and forgets the deleted ones.
	return r.reopen()
}

// packLoose writes the loose objects into one new pack and deletes them.
func (r *Repo) packLoose(loose []plumbing.Hash) (err error) {
	w, err := r.st.PackfileWriter()
	if err != nil {
		return fmt.Errorf("pack loose objects: %w", err)
	}
	if _, err := packfile.NewEncoder(w, r.st, false).Encode(loose, 10); err != nil {
		w.Close()
		return fmt.Errorf("pack loose objects: %w", err)
	}
	// Close writes the index; only then are the loose copies redundant.
	if err := w.Close(); err != nil {
		return fmt.Errorf("pack loose objects: %w", err)
	}
	for _, h := range loose {
		if err := r.st.DeleteLooseObject(h); err != nil {
			return fmt.Errorf("delete packed loose object %s: %w", h, err)
		}
	}
	return nil
}
