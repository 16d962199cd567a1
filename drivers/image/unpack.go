package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/runprov/runprov/core"
)

// Unpack returns STORE/rootfs/<manifest hex>, unpacking the manifest's
// layers once (into STORE/tmp, then renamed into place, so the directory
// exists only when complete); reused reports a rootfs that already
// existed. Files belong to the user running runprov; setuid/setgid bits,
// device nodes and file capabilities are dropped; an entry that would
// write outside the rootfs is refused with ErrUnsafe and nothing is kept.
// Each layer blob is re-hashed while it is unpacked, so a rootfs is only
// ever made from the bytes the manifest names.
func (s *Store) Unpack(ctx context.Context, manifestDigest string, p core.Progress) (string, bool, error) {
	d, err := s.Lookup(ctx, manifestDigest)
	if err != nil {
		return "", false, err
	}
	rec, err := s.rec.ImageRecord(ctx, d)
	if err != nil {
		return "", false, err
	}
	if rec.IsIndex() {
		return "", false, fmt.Errorf("unpack %s: %w: it is an index; resolve it to the manifest of one platform first", d, core.ErrInvalid)
	}
	target := s.layout.Rootfs(digestHex(d))
	if fi, err := os.Lstat(target); err == nil && fi.IsDir() {
		return target, true, nil
	}
	unlock, err := s.lock(ctx, false)
	if err != nil {
		return "", false, err
	}
	defer unlock()
	data, err := s.readBlob(d, "manifest", maxManifestSize)
	if err != nil {
		return "", false, err
	}
	m, err := parseManifest(data, d)
	if err != nil {
		return "", false, err
	}
	tmp, err := core.MkdirTemp(s.layout.Tmp(), "unpack")
	if err != nil {
		return "", false, fmt.Errorf("unpack %s: %w", d, err)
	}
	defer removeAll(tmp)
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(rootfs, 0o700); err != nil {
		return "", false, err
	}
	notices, err := s.unpackLayers(ctx, rootfs, m.Layers, d, core.OrNoProgress(p))
	for _, n := range notices {
		s.log.Info("unpack neutralised a layer entry", "image", d, "layer", n.Layer, "path", n.Path, "what", n.What)
	}
	if err != nil {
		return "", false, fmt.Errorf("unpack %s: %w", d, err)
	}
	if err := os.MkdirAll(s.layout.RootfsDir(), 0o700); err != nil {
		return "", false, err
	}
	if err := os.Rename(rootfs, target); err != nil {
		if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			return target, true, nil // another runprov finished it first
		}
		return "", false, fmt.Errorf("unpack %s: %w", d, err)
	}
	if err := syncDir(s.layout.RootfsDir()); err != nil {
		return "", false, err
	}
	return target, false, nil
}

// unpackLayers applies layers in order into the empty directory rootfs.
func (s *Store) unpackLayers(ctx context.Context, rootfs string, layers []v1.Descriptor, image string, p core.Progress) ([]Notice, error) {
	a, err := newApplier(rootfs)
	if err != nil {
		return nil, err
	}
	defer a.close()
	var total int64
	for _, l := range layers {
		total += l.Size
	}
	p.Start("unpack "+shortDigest(image), total)
	defer p.Done()
	for i, l := range layers {
		a.startLayer(i + 1)
		f, err := os.Open(s.blobPath(l.Digest.String()))
		if err != nil {
			return a.notices, fmt.Errorf("layer %d %s: %w: %v", i+1, l.Digest, core.ErrCorrupt, err)
		}
		err = applyLayer(ctx, a, f, l, p)
		f.Close()
		if err != nil {
			return a.notices, err
		}
	}
	if err := a.finish(); err != nil {
		return a.notices, err
	}
	// The rootfs is renamed into place next; make its contents durable
	// first, so that a crash of the machine never leaves a rootfs that looks
	// complete but is not. One syncfs, not one fsync per file.
	return a.notices, unix.Syncfs(a.root)
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// chunk is a piece of decompressed layer; err ends the stream.
type chunk struct {
	buf *[]byte
	n   int
	err error
}

const chunkSize = 256 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// applyLayer unpacks blob desc read from r into a. One goroutine reads the
// blob, hashes it and decompresses it into chunks; the caller's goroutine
// parses the tar and writes files, so decompression and writing overlap (as
// they do in `tar -xzf`, where gzip is a separate process).
func applyLayer(ctx context.Context, a *applier, r io.Reader, desc v1.Descriptor, p core.Progress) error {
	ch := make(chan chunk, 8)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ch)
		send := func(c chunk) bool {
			select {
			case ch <- c:
				return true
			case <-quit:
				return false
			}
		}
		h := sha256.New()
		raw := bufio.NewReaderSize(io.TeeReader(r, progressWriter{h, p}), 256<<10)
		comp := layerCompression(string(desc.MediaType))
		if comp == compressSniff {
			head, _ := raw.Peek(4)
			comp = sniffCompression(head)
		}
		dec, err := decompressor(comp, raw)
		if err != nil {
			send(chunk{err: fmt.Errorf("layer %d %s: %w: %v", a.layer, desc.Digest, core.ErrInvalid, err)})
			return
		}
		defer dec.Close()
		for {
			buf := chunkPool.Get().(*[]byte)
			n, err := io.ReadFull(dec, *buf)
			if n > 0 && !send(chunk{buf: buf, n: n}) {
				return
			}
			if n == 0 {
				chunkPool.Put(buf)
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				send(chunk{err: fmt.Errorf("layer %d %s: %w: decompress: %v", a.layer, desc.Digest, core.ErrInvalid, err)})
				return
			}
		}
		// Hash what follows the compressed stream too: the digest covers the blob.
		if _, err := io.Copy(io.Discard, raw); err != nil {
			send(chunk{err: fmt.Errorf("layer %d %s: read: %w", a.layer, desc.Digest, err)})
			return
		}
		if got := hexDigest(h); got != desc.Digest.String() {
			send(chunk{err: &core.DigestMismatchError{What: fmt.Sprintf("layer %d blob in the store", a.layer), Want: desc.Digest.String(), Got: got}})
		}
	}()
	cr := &chunkReader{ch: ch}
	err := a.apply(ctx, cr)
	if err == nil { // the tar ended: read to the end for the digest verdict
		_, err = io.Copy(io.Discard, cr)
	}
	close(quit)
	cr.drain()
	wg.Wait()
	return err
}

// chunkReader reads the chunks of applyLayer's decompressor.
type chunkReader struct {
	ch  <-chan chunk
	cur chunk
	off int
	err error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for r.cur.buf == nil || r.off == r.cur.n {
		if r.cur.buf != nil {
			chunkPool.Put(r.cur.buf)
			r.cur.buf = nil
		}
		if r.err != nil {
			return 0, r.err
		}
		c, ok := <-r.ch
		if !ok {
			r.err = io.EOF
			continue
		}
		if c.err != nil {
			r.err = c.err
			continue
		}
		r.cur, r.off = c, 0
	}
	n := copy(p, (*r.cur.buf)[r.off:r.cur.n])
	r.off += n
	return n, nil
}

// drain returns the buffers still queued to the pool.
func (r *chunkReader) drain() {
	if r.cur.buf != nil {
		chunkPool.Put(r.cur.buf)
		r.cur.buf = nil
	}
	for c := range r.ch {
		if c.buf != nil {
			chunkPool.Put(c.buf)
		}
	}
}
