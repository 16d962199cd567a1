package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzApplyLayers builds layers from the fuzzer's bytes (entries of every
// kind, with names and link targets drawn from a vocabulary of escapes:
// "..", absolute paths, links to the canary beside the rootfs) and checks
// that applying them never changes anything outside the rootfs, whatever it
// refuses.
//
//	go test ./drivers/image -run '^$' -fuzz FuzzApplyLayers -fuzztime 60s
func FuzzApplyLayers(f *testing.F) {
	f.Add([]byte{2, 7, 1, 0, 0, 7, 0, 0})
	f.Add([]byte{3, 2, 3, 0, 2, 3, 0, 0, 0, 9, 0, 0})
	f.Add([]byte{2, 1, 9, 0, 255, 4, 1, 0, 0, 1, 0, 0, 5, 1, 0, 0})
	f.Add([]byte{1, 1, 0, 0, 2, 12, 2, 0, 0, 13, 0, 0, 4, 12, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		layers := fuzzLayers(data)
		box := t.TempDir()
		canary := filepath.Join(box, "canary")
		os.MkdirAll(filepath.Join(canary, "sub"), 0o755)
		os.WriteFile(filepath.Join(canary, "secret"), []byte("secret\n"), 0o600)
		rootfs := filepath.Join(box, "rootfs")
		os.Mkdir(rootfs, 0o700)
		t.Cleanup(func() { removeAll(rootfs) })
		before := snapshot(t, box, rootfs)
		a, err := newApplier(rootfs)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range layers {
			a.startLayer(i + 1)
			if err = a.apply(context.Background(), bytes.NewReader(l)); err != nil {
				break
			}
		}
		if err == nil {
			a.finish()
		}
		a.close()
		if after := snapshot(t, box, rootfs); after != before {
			t.Fatalf("layers changed files outside the rootfs:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if _, err := os.Lstat(escapeMarker); err == nil {
			os.RemoveAll(escapeMarker)
			t.Fatalf("layers wrote %s", escapeMarker)
		}
		checkNoOutsideLinks(t, rootfs)
	})
}

var (
	fuzzNames   = []string{"a", "b", "..", ".", "evil", "canary", "x", "/", ".wh.a", ".wh..wh..opq", ".wh..", "secret", "tmp"}
	fuzzTargets = []string{"../canary", "/", "..", "../..", "a", "b/a", escapeMarker, "canary/secret", "/canary", ".", "evil", "../canary/secret", "x/..", "/tmp"}
)

// fuzzLayers reads groups of 4 bytes: kind, name, link target, mode; 255 as
// the kind starts a new layer.
func fuzzLayers(data []byte) [][]byte {
	var (
		layers [][]byte
		buf    bytes.Buffer
		tw     = tar.NewWriter(&buf)
	)
	flush := func() {
		tw.Close()
		layers = append(layers, bytes.Clone(buf.Bytes()))
		buf.Reset()
		tw = tar.NewWriter(&buf)
	}
	for i := 0; i+4 <= len(data) && len(layers) < 4; i += 4 {
		kind, n, l, m := data[i], data[i+1], data[i+2], data[i+3]
		if kind == 255 {
			flush()
			continue
		}
		var parts []string
		for j := 0; j <= int(n>>6); j++ {
			parts = append(parts, fuzzNames[(int(n)+j*5)%len(fuzzNames)])
		}
		hdr := &tar.Header{Name: strings.Join(parts, "/"), Mode: int64(m) | 0o600, ModTime: time.Unix(0, 0)}
		var body []byte
		switch kind % 6 {
		case 0:
			hdr.Typeflag, body = tar.TypeReg, []byte("pwned\n")
		case 1:
			hdr.Typeflag = tar.TypeDir
		case 2:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, fuzzTargets[int(l)%len(fuzzTargets)]
		case 3:
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, fuzzTargets[int(l)%len(fuzzTargets)]
		case 4:
			hdr.Typeflag = tar.TypeFifo
		case 5:
			hdr.Typeflag, hdr.Devmajor = tar.TypeChar, 1
		}
		hdr.Size = int64(len(body))
		if tw.WriteHeader(hdr) == nil {
			tw.Write(body)
		}
	}
	flush()
	return layers
}

// BenchmarkApplySmallFiles measures the applier alone on a layer of 2000
// small files in 20 directories (the cost per file: openat, write, utimensat,
// close).
func BenchmarkApplySmallFiles(b *testing.B) {
	var entries []tEntry
	for i := range 2000 {
		entries = append(entries, tFile(fmt.Sprintf("d%02d/f%04d", i%20, i), strings.Repeat("x", 1000), 0o644))
	}
	layer := layerTar(b, entries...)
	b.SetBytes(int64(len(layer)))
	for b.Loop() {
		dir := b.TempDir()
		a, err := newApplier(dir)
		if err != nil {
			b.Fatal(err)
		}
		a.startLayer(1)
		if err := a.apply(context.Background(), bytes.NewReader(layer)); err != nil {
			b.Fatal(err)
		}
		a.finish()
		a.close()
	}
}
