package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/runprov/runprov/drivers/runtime"
	"github.com/runprov/runprov/plugins/producer"
)

var runStart = benchmark{
	name: "run",
	desc: "runprov run of `true` on a cached image vs bare runc run of the same spec vs podman run --rm --network=none; peak RSS",
	run:  benchRun,
}

func benchRun(ctx context.Context, env *benchEnv) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (runc with a user namespace, podman)")
	}
	reps := env.reps(15)
	store, commit, digest, err := trueRunStore(ctx, env, "")
	if err != nil {
		return err
	}
	lay := filepath.Join(env.dir, "layout")
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "run", commit, "--no-input"); err != nil { // unpacks the rootfs once
		return err
	}

	// Bare runc: the config.json runprov wrote, on a prepared copy of the
	// rootfs with the mount points made and the output dirs handed over.
	// Like runprov's /run/runprov: the container's root (an unprivileged
	// host id) must be able to reach the rootfs, which the 0700 bench
	// directory forbids.
	bundleDir, err := os.MkdirTemp("/run", "runprov-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bundleDir)
	os.Chmod(bundleDir, 0o711)
	bundle, err := bareBundle(store, digest, bundleDir)
	if err != nil {
		return err
	}
	runcRoot := filepath.Join(env.dir, "runc-state")

	// runprov run (prepare: verify, record; overlay, runc, snapshot, hash,
	// finish) and bare runc in turn, so that the load of a shared machine
	// weighs on both alike.
	var runprovS, runcS sample
	var rss int64
	for i := range reps {
		d, ru, err := timeRusage(ctx, env.runprov, "--store", store, "-q", "run", commit, "--no-input")
		if err != nil {
			return err
		}
		runprovS = append(runprovS, d)
		rss = max(rss, ru.Maxrss)
		d, _, err = timeRusage(ctx, "runc", "--root", runcRoot, "run", "--bundle", bundle, fmt.Sprintf("bench-%d", i))
		if err != nil {
			return err
		}
		runcS = append(runcS, d)
	}

	// podman: the same image, imported from the layout.
	podmanS, podmanErr := timePodman(ctx, env, lay, reps)
	chS, chBareS, chErr := timeChRun(ctx, env, store, commit, bundle, reps)

	env.row("runprov run (true, cached image)", runprovS)
	env.row("runc run (same config.json, prepared bundle)", runcS)
	if podmanErr == nil {
		env.row("podman run --rm --network=none", podmanS)
	} else {
		fmt.Fprintf(env.out, "  %-44s unavailable: %v\n", "podman run --rm --network=none", podmanErr)
	}
	env.ratio("runprov / runc (target <= 1.2x)", runprovS, runcS)
	if podmanErr == nil {
		env.ratio("runprov / podman (target < 1x)", runprovS, podmanS)
	}
	if chErr == nil {
		env.row("runprov run --runtime ch-run", chS)
		env.row("ch-run (same arguments, prepared bundle)", chBareS)
		env.ratio("runprov ch-run / ch-run (target <= 2x)", chS, chBareS)
	} else {
		fmt.Fprintf(env.out, "  %-44s unavailable: %v\n", "ch-run", chErr)
	}
	fmt.Fprintf(env.out, "  %-44s %d MiB\n", "runprov peak RSS, trivial run (max over runs)", rss>>10)

	return nil
}

// timeChRun times runprov run --runtime ch-run against ch-run itself with
// the arguments runprov gives it, on the prepared bundle, in turn.
func timeChRun(ctx context.Context, env *benchEnv, store, commit, bundle string, reps int) (runprovS, bareS sample, err error) {
	if _, err := exec.LookPath("ch-run"); err != nil {
		return nil, nil, err
	}
	args, err := runtime.ChRunBundleArgs(bundle)
	if err != nil {
		return nil, nil, err
	}
	if os.Getenv("USER") == "" { // ch-run refuses to start without it
		os.Setenv("USER", "root")
	}
	rpArgs := []string{"--store", store, "-q", "run", commit, "--no-input", "--runtime", "ch-run", "--allow-weaker-sandbox"}
	for range reps {
		d, _, err := timeRusage(ctx, env.runprov, rpArgs...)
		if err != nil {
			return nil, nil, err
		}
		runprovS = append(runprovS, d)
		if d, _, err = timeRusage(ctx, "ch-run", args...); err != nil {
			return nil, nil, err
		}
		bareS = append(bareS, d)
	}
	return runprovS, bareS, nil
}

// timePodman times podman run --rm --network=none of /bin/true in the
// image imported from the OCI layout lay.
func timePodman(ctx context.Context, env *benchEnv, lay string, reps int) (sample, error) {
	var podmanS sample
	if _, err := exec.LookPath("podman"); err != nil {
		return nil, err
	}
	id, err := env.cmd(ctx, nil, "podman", "pull", "-q", "oci:"+lay+":bench")
	if err != nil {
		return nil, err
	}
	id = strings.TrimSpace(id)
	defer env.cmd(context.WithoutCancel(ctx), nil, "podman", "rmi", "-f", id)
	args := []string{"run", "--rm", "--network=none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", id, "/bin/true"}
	if _, err := env.cmd(ctx, nil, "podman", args...); err != nil { // warm
		return nil, err
	}
	for range reps {
		d, _, err := timeRusage(ctx, "podman", args...)
		if err != nil {
			return podmanS, err
		}
		podmanS = append(podmanS, d)
	}
	return podmanS, nil
}

var inputHash = benchmark{
	name: "hash",
	desc: "input hashing of 1 GiB (the manifest alone, and run --rehash) vs sha256sum; peak RSS of a run hashing it",
	run:  benchHash,
}

// benchHash: the input manifest of 1 GB of files (runprov's parallel
// hashing) vs sha256sum of the same files, warm page cache for both; and
// runprov's peak RSS in a run that hashes them.
func benchHash(ctx context.Context, env *benchEnv) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (runc with a user namespace)")
	}
	store, commit, _, err := trueRunStore(ctx, env, "")
	if err != nil {
		return err
	}
	if _, err := env.cmd(ctx, nil, env.runprov, "--store", store, "-q", "run", commit, "--no-input"); err != nil { // unpacks the rootfs once
		return err
	}
	reps := env.reps(5)
	in := filepath.Join(env.dir, "input")
	files, err := writeInputFiles(in, 1<<30)
	if err != nil {
		return err
	}
	var shaS, goS sample
	for range reps {
		d, _, err := timeRusage(ctx, "sha256sum", files...)
		if err != nil {
			return err
		}
		shaS = append(shaS, d)
		d, err = timeIt(func() error {
			_, err := producer.Manifest(ctx, "data", in, 0)
			return err
		})
		if err != nil {
			return err
		}
		goS = append(goS, d)
	}
	var runS sample
	var rss int64
	for range env.reps(3) {
		d, ru, err := timeRusage(ctx, env.runprov, "--store", store, "-q", "run", commit, "--input", "data="+in, "--rehash")
		if err != nil {
			return err
		}
		runS = append(runS, d)
		rss = max(rss, ru.Maxrss)
	}
	mbps := func(s sample) string { return fmt.Sprintf("%.0f MB/s", float64(1<<30)/1e6/s.median().Seconds()) }
	env.row("sha256sum, 1 GiB in 16 files ("+mbps(shaS)+")", shaS)
	env.row("runprov input manifest, 1 GiB ("+mbps(goS)+")", goS)
	env.ratio("runprov throughput / sha256sum (target >= 0.8x)", shaS, goS)
	env.row("runprov run --input --rehash (1 GiB hashed)", runS)
	fmt.Fprintf(env.out, "  %-44s %d MiB\n", "runprov peak RSS, run hashing 1 GiB", rss>>10)
	return nil
}

// trueRunStore makes a store in env.dir with the busybox image and a
// Runfile running `true` (with extra lines), and returns the store, the
// commit and the image digest.
func trueRunStore(ctx context.Context, env *benchEnv, extra string) (store, commit, digest string, err error) {
	lay := filepath.Join(env.dir, "layout")
	if digest, err = writeBusyboxLayout(lay); err != nil {
		return "", "", "", err
	}
	store = filepath.Join(env.dir, "store")
	rp := func(args ...string) (string, error) {
		return env.cmd(ctx, nil, env.runprov, append([]string{"--store", store, "-q"}, args...)...)
	}
	for _, args := range [][]string{{"init"}, {"image", "import", lay}} {
		if _, err := rp(args...); err != nil {
			return "", "", "", err
		}
	}
	rf := filepath.Join(env.dir, "Runfile")
	os.WriteFile(rf, []byte("FROM busybox@"+digest+"\n"+extra+"CMD [\"/bin/true\"]\n"), 0o644)
	out, err := rp("add", rf)
	if err != nil {
		return "", "", "", err
	}
	return store, strings.TrimSpace(out), digest, nil
}

// writeInputFiles writes about total bytes of incompressible data in 16
// files and returns their paths.
func writeInputFiles(dir string, total int64) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20)
	var paths []string
	for i := range 16 {
		p := filepath.Join(dir, fmt.Sprintf("part-%02d.bin", i))
		f, err := os.Create(p)
		if err != nil {
			return nil, err
		}
		for n := int64(0); n < total/16; n += int64(len(buf)) {
			for j := 0; j < len(buf); j += 8 {
				v := r.Uint64()
				for k := range 8 {
					buf[j+k] = byte(v >> (8 * k))
				}
			}
			if _, err := f.Write(buf); err != nil {
				f.Close()
				return nil, err
			}
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// writeBusyboxLayout writes an OCI layout (tag "bench") of busybox-static
// with /bin/sh and /bin/true, and returns the manifest digest.
func writeBusyboxLayout(dir string) (string, error) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return "", fmt.Errorf("%w (install busybox-static)", err)
	}
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return "", err
	}
	_, layerDigest, diffID, size, err := writeLayerBlob(blobs, func(tw *tar.Writer) error {
		tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: benchTime})
		tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb)), ModTime: benchTime})
		tw.Write(bb)
		for _, l := range []string{"sh", "true"} {
			tw.WriteHeader(&tar.Header{Name: "bin/" + l, Typeflag: tar.TypeSymlink, Linkname: "busybox", ModTime: benchTime})
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/bin/true"}, "Env": []string{"PATH=/bin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	cfgDigest, err := writeBlob(blobs, cfg)
	if err != nil {
		return "", err
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cfgDigest, Size: int64(len(cfg))},
		"layers": []desc{{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: layerDigest, Size: size}},
	})
	manDigest, err := writeBlob(blobs, man)
	if err != nil {
		return "", err
	}
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []desc{{
		MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: manDigest, Size: int64(len(man)),
		Annotations: map[string]string{"org.opencontainers.image.ref.name": "bench"},
	}}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		return "", err
	}
	return manDigest, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// bareBundle makes a runc bundle from the config.json of runprov's last
// run: the same process, namespaces, seccomp and mounts, on a private copy
// of the rootfs with the mount points made (what runprov's overlay does),
// and the output and scratch directories handed to the run's user.
func bareBundle(store, digest, dir string) (string, error) {
	runs, _ := filepath.Glob(filepath.Join(store, "runs", "*", "config.json"))
	if len(runs) == 0 {
		return "", fmt.Errorf("no run of runprov to copy the config of")
	}
	data, err := os.ReadFile(runs[0])
	if err != nil {
		return "", err
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		return "", err
	}
	bundle := filepath.Join(dir, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	os.MkdirAll(bundle, 0o755)
	if out, err := exec.Command("cp", "-a", filepath.Join(store, "rootfs", strings.TrimPrefix(digest, "sha256:")), rootfs).CombinedOutput(); err != nil {
		return "", fmt.Errorf("copy the rootfs: %v: %s", err, out)
	}
	os.Chmod(rootfs, 0o755)
	spec["root"] = map[string]any{"path": rootfs, "readonly": true}
	mounts, _ := spec["mounts"].([]any)
	for i, m := range mounts {
		mm := m.(map[string]any)
		dest := mm["destination"].(string)
		if err := os.MkdirAll(filepath.Join(rootfs, dest), 0o755); err != nil {
			return "", err
		}
		if dest == "/tmp" {
			os.Chmod(filepath.Join(rootfs, dest), 0o1777)
		}
		if mm["type"] == "bind" {
			src := filepath.Join(bundle, fmt.Sprintf("mount-%d", i))
			os.MkdirAll(src, 0o700)
			os.Chown(src, 1_000_000_000+65534, 1_000_000_000+65534)
			mm["source"] = src
		}
	}
	data, _ = json.MarshalIndent(spec, "", "  ")
	return bundle, os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644)
}
