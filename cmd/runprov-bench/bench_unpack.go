package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
)

var unpackImage = benchmark{
	name: "unpack",
	desc: "image unpack (50 MB and 500 MB images of many small and some large files, gzip layers): runprov vs tar -xzf vs umoci raw unpack; peak RSS; reuse",
	run:  benchUnpack,
}

func benchUnpack(ctx context.Context, env *benchEnv) error {
	reps := env.reps(3)
	umoci, _ := exec.LookPath("umoci")
	var rss []string
	for _, size := range []int{50, 500} {
		maxRSS, err := benchUnpackSize(ctx, env, size, umoci, reps)
		if err != nil {
			return err
		}
		rss = append(rss, fmt.Sprintf("%d MB: %.1f MiB", size, float64(maxRSS)/1024))
	}
	fmt.Fprintf(env.out, "  %-44s %s\n", "runprov peak RSS (max over runs)", strings.Join(rss, ", "))
	return nil
}

// benchUnpackSize measures the unpack of an image of size MB against tar
// and umoci (when there); it returns runprov's peak RSS in KiB.
func benchUnpackSize(ctx context.Context, env *benchEnv, size int, umoci string, reps int) (int64, error) {
	label := fmt.Sprintf("%d MB", size)
	layoutDir := filepath.Join(env.dir, fmt.Sprintf("layout-%d", size))
	fmt.Fprintf(env.out, "  building a %s image ...\n", label)
	layers, digest, err := writeBenchImage(layoutDir, int64(size)<<20)
	if err != nil {
		return 0, err
	}
	store := filepath.Join(env.dir, fmt.Sprintf("store-%d", size))
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "init"); err != nil {
		return 0, err
	}
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "image", "import", layoutDir); err != nil {
		return 0, err
	}
	rootfs := filepath.Join(store, "rootfs", strings.TrimPrefix(digest, "sha256:"))
	// Every run writes to a new directory, and what runs leave is
	// deleted only after the last: ext4 is slow to allocate inodes next
	// to many it has just freed (recently_deleted), which would
	// penalise whichever tool runs right after a deletion.
	trash := filepath.Join(env.dir, "trash")
	var (
		runprovS, reuseS, tarS, tarSyncS, umociS sample
		maxRSS                                   int64
	)
	for rep := range reps {
		if _, err := os.Stat(rootfs); err == nil {
			os.MkdirAll(trash, 0o755)
			if err := os.Rename(rootfs, filepath.Join(trash, fmt.Sprintf("runprov-%d-%d", size, rep))); err != nil {
				return 0, err
			}
		}
		d, ru, err := timeRusage(ctx, env.runprov, "--store", store, "-q", "image", "unpack", digest)
		if err != nil {
			return 0, err
		}
		runprovS = append(runprovS, d)
		maxRSS = max(maxRSS, ru.Maxrss)
		// A second run: the rootfs is reused.
		if d, _, err = timeRusage(ctx, env.runprov, "--store", store, "-q", "image", "unpack", digest); err != nil {
			return 0, err
		}
		reuseS = append(reuseS, d)

		// tar -xzf of each layer in order, as is and followed by sync
		// (runprov syncs the rootfs once before renaming it into place).
		for _, withSync := range []bool{false, true} {
			dest := filepath.Join(trash, fmt.Sprintf("tar-%d-%d-%v", size, rep, withSync))
			d, err := timeTar(ctx, layers, dest, withSync)
			if err != nil {
				return 0, err
			}
			if withSync {
				tarSyncS = append(tarSyncS, d)
			} else {
				tarS = append(tarS, d)
			}
		}
		if umoci != "" {
			dest := filepath.Join(trash, fmt.Sprintf("umoci-%d-%d", size, rep))
			d, _, err := timeRusage(ctx, umoci, "raw", "unpack", "--rootless", "--image", layoutDir+":bench", dest)
			if err != nil {
				return 0, err
			}
			umociS = append(umociS, d)
		}
	}
	if err := clean(trash); err != nil {
		return 0, err
	}
	printUnpack(env, label, runprovS, reuseS, tarS, tarSyncS, umociS)
	clean(store)
	clean(layoutDir)
	return maxRSS, nil
}

// timeTar times tar -xzf of each layer in order into dest, and a sync of
// dest when withSync.
func timeTar(ctx context.Context, layers []string, dest string, withSync bool) (time.Duration, error) {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return 0, err
	}
	script := ""
	for _, l := range layers {
		script += fmt.Sprintf("tar -xzf %s -C %s && ", l, dest)
	}
	script += "true"
	if withSync {
		script += " && sync -f " + dest
	}
	d, _, err := timeRusage(ctx, "sh", "-c", script)
	return d, err
}

// printUnpack prints the unpack timings of one image size and their ratios.
func printUnpack(env *benchEnv, label string, runprovS, reuseS, tarS, tarSyncS, umociS sample) {
	env.row("runprov image unpack, "+label, runprovS)
	env.row("runprov image unpack, "+label+", reused", reuseS)
	env.row("tar -xzf each layer, "+label, tarS)
	env.row("tar -xzf each layer + sync, "+label, tarSyncS)
	if len(umociS) > 0 {
		env.row("umoci raw unpack --rootless, "+label, umociS)
	}
	env.ratio("runprov / tar -xzf, "+label, runprovS, tarS)
	env.ratio("runprov / tar -xzf + sync, "+label, runprovS, tarSyncS)
	if len(umociS) > 0 {
		env.ratio("runprov / umoci, "+label, runprovS, umociS)
	}
}

// timeRusage runs a command to completion and returns its wall time and
// resource usage (peak RSS in KiB).
func timeRusage(ctx context.Context, name string, args ...string) (time.Duration, *syscall.Rusage, error) {
	c := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	c.Stderr = &stderr
	// Start from a quiet disk: flush what earlier runs left dirty.
	syscall.Sync()
	start := time.Now()
	err := c.Run()
	d := time.Since(start)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	ru, _ := c.ProcessState.SysUsage().(*syscall.Rusage)
	if ru == nil {
		ru = &syscall.Rusage{}
	}
	return d, ru, nil
}

// clean removes a directory tree, also when parts of it are read-only.
func clean(dir string) error {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// writeBenchImage writes an OCI layout at dir (tag "bench") of an image of
// about size bytes, uncompressed: a base layer of many small text-like files
// (about 30% of the bytes), a layer of a few large, mostly incompressible
// files, and a layer that rewrites some small files, all gzip-compressed.
// The content depends only on size. It returns the layer blob paths, in
// order, and the manifest digest.
func writeBenchImage(dir string, size int64) ([]string, string, error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, "", err
	}
	small := size * 3 / 10
	large := size - small - size/50
	gens := []func(tw *tar.Writer) error{
		func(tw *tar.Writer) error { return smallFiles(tw, 1, small, "usr/share") },
		func(tw *tar.Writer) error { return largeFiles(tw, 2, large) },
		func(tw *tar.Writer) error { return smallFiles(tw, 1, size/50, "usr/share") }, // same seed: rewrites files of layer 1
	}
	type result struct {
		path, digest, diffID string
		size                 int64
		err                  error
	}
	results := make([]result, len(gens))
	var wg sync.WaitGroup
	for i, gen := range gens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			r.path, r.digest, r.diffID, r.size, r.err = writeLayerBlob(blobs, gen)
		}()
	}
	wg.Wait()
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	var (
		layerDescs []desc
		diffIDs    []string
		paths      []string
	)
	for _, r := range results {
		if r.err != nil {
			return nil, "", r.err
		}
		layerDescs = append(layerDescs, desc{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: r.digest, Size: r.size})
		diffIDs = append(diffIDs, r.diffID)
		paths = append(paths, r.path)
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/bin/sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	cfgDesc, err := writeBlob(blobs, cfg)
	if err != nil {
		return nil, "", err
	}
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cfgDesc, Size: int64(len(cfg))},
		"layers": layerDescs,
	})
	manDigest, err := writeBlob(blobs, man)
	if err != nil {
		return nil, "", err
	}
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []desc{{
		MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: manDigest, Size: int64(len(man)),
		Annotations: map[string]string{"org.opencontainers.image.ref.name": "bench"},
	}}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return nil, "", err
	}
	return paths, manDigest, nil
}

func writeBlob(dir string, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	return d, os.WriteFile(filepath.Join(dir, hex.EncodeToString(sum[:])), data, 0o644)
}

// writeLayerBlob writes the gzip-compressed tar gen makes as a blob.
func writeLayerBlob(dir string, gen func(*tar.Writer) error) (path, digest, diffID string, size int64, err error) {
	tmp, err := os.CreateTemp(dir, "layer-")
	if err != nil {
		return "", "", "", 0, err
	}
	defer tmp.Close()
	blobHash, diffHash := sha256.New(), sha256.New()
	cw := &countingWriter{w: io.MultiWriter(tmp, blobHash)}
	zw, _ := gzip.NewWriterLevel(cw, gzip.DefaultCompression)
	tw := tar.NewWriter(io.MultiWriter(zw, diffHash))
	if err := gen(tw); err != nil {
		return "", "", "", 0, err
	}
	if err := tw.Close(); err != nil {
		return "", "", "", 0, err
	}
	if err := zw.Close(); err != nil {
		return "", "", "", 0, err
	}
	hx := hex.EncodeToString(blobHash.Sum(nil))
	path = filepath.Join(dir, hx)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", "", "", 0, err
	}
	return path, "sha256:" + hx, "sha256:" + hex.EncodeToString(diffHash.Sum(nil)), cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

var benchTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

var words = strings.Fields(`the of and to in is for that with as on by this be are from or at an it not which
	func return package import struct int string error nil if else range var const type interface map chan go
	select case default break continue defer true false make new len cap append copy delete panic recover`)

// smallFiles writes files of 200 B to 16 KiB of text-like content, 100 to a
// directory, until total bytes.
func smallFiles(tw *tar.Writer, seed uint64, total int64, prefix string) error {
	r := rand.New(rand.NewPCG(seed, 42))
	var (
		written int64
		buf     strings.Builder
	)
	for i := 0; written < total; i++ {
		dir := fmt.Sprintf("%s/pkg%03d/sub%02d", prefix, i/1000, (i/100)%10)
		if i%100 == 0 {
			if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: benchTime}); err != nil {
				return err
			}
		}
		n := 200 + int(r.ExpFloat64()*3000)
		n = min(n, 16<<10)
		buf.Reset()
		for buf.Len() < n {
			buf.WriteString(words[r.IntN(len(words))])
			if r.IntN(12) == 0 {
				buf.WriteByte('\n')
			} else {
				buf.WriteByte(' ')
			}
		}
		body := buf.String()[:n]
		hdr := &tar.Header{Name: fmt.Sprintf("%s/file%05d.txt", dir, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(n), ModTime: benchTime}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, body); err != nil {
			return err
		}
		written += int64(n)
	}
	return nil
}

// largeFiles writes eight files sharing total bytes, each 4 KiB block three
// quarters random and one quarter repetitive: about 75% incompressible,
// like binaries and compressed data in real images.
func largeFiles(tw *tar.Writer, seed uint64, total int64) error {
	r := rand.NewChaCha8([32]byte{byte(seed)})
	const n = 8
	if err := tw.WriteHeader(&tar.Header{Name: "opt/data/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: benchTime}); err != nil {
		return err
	}
	block := make([]byte, 4096)
	for i := range n {
		size := total / n
		hdr := &tar.Header{Name: fmt.Sprintf("opt/data/blob%d.bin", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: benchTime}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		for left := size; left > 0; {
			r.Read(block[:3072])
			for j := 3072; j < len(block); j++ {
				block[j] = byte(j % 7)
			}
			w := min(left, int64(len(block)))
			if _, err := tw.Write(block[:w]); err != nil {
				return err
			}
			left -= w
		}
	}
	return nil
}
