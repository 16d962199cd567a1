package image

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/runprov/runprov/core"
)

// ScanLayers reads the tar headers of a manifest's layers, in order, and
// returns the setuid and setgid files, the world-writable directories and
// the unpacked size of the image, whiteouts applied. Unpack drops setuid
// bits, so only the layers can say which files had them. Each layer is
// re-hashed on the way.
func (s *Store) ScanLayers(ctx context.Context, manifestDigest string) (*core.LayerScan, error) {
	d, err := s.Lookup(ctx, manifestDigest)
	if err != nil {
		return nil, err
	}
	unlock, err := s.lock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	data, err := s.readBlob(d, "manifest", maxManifestSize)
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(data, d)
	if err != nil {
		return nil, err
	}
	st := scanState{special: map[string]byte{}, sizes: map[string]int64{}}
	for i, l := range m.Layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := os.Open(s.blobPath(l.Digest.String()))
		if err != nil {
			return nil, fmt.Errorf("layer %d %s: %w: %v", i+1, l.Digest, core.ErrCorrupt, err)
		}
		h := sha256.New()
		raw := bufio.NewReaderSize(io.TeeReader(f, h), 256<<10)
		comp := layerCompression(string(l.MediaType))
		if comp == compressSniff {
			head, _ := raw.Peek(4)
			comp = sniffCompression(head)
		}
		err = st.layer(raw, comp)
		// Read to the end either way: a changed blob is named as such, not
		// by the tar error it may cause.
		_, rerr := io.Copy(io.Discard, raw)
		f.Close()
		if got := hexDigest(h); rerr == nil && got != l.Digest.String() {
			return nil, &core.DigestMismatchError{What: fmt.Sprintf("layer %d blob in the store", i+1), Want: l.Digest.String(), Got: got}
		}
		if err == nil {
			err = rerr
		}
		if err != nil {
			return nil, fmt.Errorf("scan layer %d %s: %w", i+1, l.Digest, err)
		}
	}
	return st.result(), nil
}

// scanState is the image's paths as the layers so far leave them.
type scanState struct {
	special map[string]byte  // path -> 's' setuid/setgid file, 'w' world-writable directory
	sizes   map[string]int64 // regular file path -> size
}

func (st *scanState) layer(r io.Reader, comp compression) error {
	dec, err := decompressor(comp, r)
	if err != nil {
		return fmt.Errorf("%w: %v", core.ErrInvalid, err)
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	// An opaque directory hides what lower layers put there, not what this
	// layer did (a tar may list entries before the marker).
	cur := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", core.ErrInvalid, err)
		}
		p := path.Join("/", hdr.Name)
		dir, base := path.Split(p)
		switch {
		case base == ".wh..wh..opq":
			st.remove(path.Clean(dir), false, cur)
			continue
		case strings.HasPrefix(base, ".wh."):
			st.remove(path.Join(dir, strings.TrimPrefix(base, ".wh.")), true, nil)
			continue
		}
		// A later entry replaces an earlier one at the same path (whiteouts,
		// rare, are the only prefix scans: this stays linear).
		delete(st.special, p)
		delete(st.sizes, p)
		cur[p] = true
		mode := hdr.Mode
		switch hdr.Typeflag {
		case tar.TypeReg:
			st.sizes[p] = hdr.Size
			if mode&0o6000 != 0 {
				st.special[p] = 's'
			}
		case tar.TypeDir:
			if mode&0o002 != 0 {
				st.special[p] = 'w'
			}
		}
	}
}

// remove forgets p (when self) and everything under it but keep.
func (st *scanState) remove(p string, self bool, keep map[string]bool) {
	prefix := strings.TrimSuffix(p, "/") + "/"
	gone := func(k string) bool { return ((self && k == p) || strings.HasPrefix(k, prefix)) && !keep[k] }
	for k := range st.special {
		if gone(k) {
			delete(st.special, k)
		}
	}
	for k := range st.sizes {
		if gone(k) {
			delete(st.sizes, k)
		}
	}
}

func (st *scanState) result() *core.LayerScan {
	res := &core.LayerScan{Setuid: []string{}, WorldWritable: []string{}}
	for p, kind := range st.special {
		if kind == 's' {
			res.Setuid = append(res.Setuid, p)
		} else {
			res.WorldWritable = append(res.WorldWritable, p)
		}
	}
	for _, n := range st.sizes {
		res.Size += n
	}
	slices.Sort(res.Setuid)
	slices.Sort(res.WorldWritable)
	return res
}
