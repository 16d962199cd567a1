// Command build-image builds the demo's container image: the csv-summary
// program (static, built with the local Go toolchain) plus Debian's static
// busybox for a shell, as a one-layer OCI image written to an OCI layout
// directory. Every timestamp and owner is fixed, so the same inputs give the
// same digest. It prints the image's manifest digest.
//
//	go run ./examples/build-image -o DIR [-busybox /bin/busybox]
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// applets are the busybox commands linked into /bin.
var applets = []string{"sh", "cat", "ls", "echo", "id", "wc", "sha256sum", "true", "false", "sleep", "env", "mkdir", "touch", "rm", "grep", "head", "date", "nc", "wget", "mount", "hostname", "uname"}

// dirs exist in the image so that the sandbox's mount targets exist (ch-run
// needs them; runc then needs no writable rootfs to create them).
var dirs = []string{"bin", "dev", "etc", "proc", "sys", "tmp", "usr", "usr/local", "usr/local/bin",
	"safe_data", "safe_outputs", "inputs", "outputs", "scratch", "work"}

var epoch = time.Unix(0, 0).UTC()

func main() {
	out := flag.String("o", "", "OCI layout directory to write (created; must not exist)")
	busybox := flag.String("busybox", "/bin/busybox", "a static busybox binary (Debian: busybox-static)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: build-image -o DIR [-busybox PATH]")
		os.Exit(2)
	}
	digest, err := build(*out, *busybox)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build-image:", err)
		os.Exit(1)
	}
	fmt.Println(digest)
}

func build(out, busybox string) (string, error) {
	if _, err := os.Stat(out); err == nil {
		return "", fmt.Errorf("%s exists; remove it or choose another -o", out)
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return "", fmt.Errorf("%w (install Debian's busybox-static)", err)
	}
	prog, err := buildProgram()
	if err != nil {
		return "", err
	}
	layerBytes, err := rootfsTar(bb, prog)
	if err != nil {
		return "", err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	})
	if err != nil {
		return "", err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: "runprov examples/build-image", Created: v1.Time{Time: epoch}}})
	if err != nil {
		return "", err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = runtime.GOARCH, "linux"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Env = []string{"PATH=/usr/local/bin:/bin"}
	cfg.Config.Entrypoint = []string{"/usr/local/bin/csv-summary"}
	cfg.Config.WorkingDir = "/work"
	cfg.Config.User = "65534:65534"
	cfg.Config.Labels = map[string]string{"org.opencontainers.image.title": "runprov csv-summary example"}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return "", err
	}
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return "", err
	}
	if err := p.AppendImage(img); err != nil {
		return "", err
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// rootfsTar is the image's one layer: busybox and its applets, the
// example program, and the users it runs as.
func rootfsTar(bb, prog []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, data []byte) error {
		h.ModTime, h.Format = epoch, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range dirs {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		if err := add(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: mode}, nil); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"bin/busybox", 0o755, bb},
		{"usr/local/bin/csv-summary", 0o755, prog},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nanalyst:x:1000:1000:analyst:/work:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nanalyst:x:1000:\nnogroup:x:65534:\n")},
	}
	for _, f := range files {
		if err := add(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: f.mode, Size: int64(len(f.data))}, f.data); err != nil {
			return nil, err
		}
	}
	for _, a := range applets {
		if err := add(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// buildProgram compiles examples/csv-summary statically and reproducibly.
func buildProgram() ([]byte, error) {
	tmp, err := os.MkdirTemp("", "runprov-example-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "csv-summary")
	src, err := sourceDir()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build csv-summary: %v\n%s", err, out)
	}
	return os.ReadFile(bin)
}

// sourceDir finds examples/csv-summary from the working directory (the
// repository root or examples/).
func sourceDir() (string, error) {
	for _, c := range []string{"examples/csv-summary", "csv-summary", "../csv-summary"} {
		if _, err := os.Stat(filepath.Join(c, "main.go")); err == nil {
			return filepath.Abs(c)
		}
	}
	return "", fmt.Errorf("examples/csv-summary not found: run from the repository root")
}
