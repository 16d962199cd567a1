package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/runprov/runprov/drivers/inventory"
)

var inventoryBench = benchmark{
	name: "inventory-debian-300mb",
	desc: "package inventory of a 300 MB Debian rootfs (this host's packages and dpkg status), in process; taken once per image, not per run; vs dpkg-query -W and find -name '*.dist-info'",
	run:  benchInventory,
}

// inventoryBudget is what the inventory of a 300 MB Debian image may take.
const inventoryBudget = time.Second

func benchInventory(ctx context.Context, env *benchEnv) error {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		fmt.Fprintln(env.out, "  not a Debian host (no dpkg-query): skipped")
		return nil
	}
	rootfs := filepath.Join(env.dir, "rootfs")
	size, files, err := debianBenchRootfs(ctx, rootfs, 300<<20)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.out, "  rootfs: %d MB in %d files\n", size>>20, files)
	reps := env.reps(5)
	var inv, dpkg, find sample
	var n int
	for range reps {
		d, err := timeIt(func() error {
			pkgs, err := inventory.Read(ctx, rootfs)
			n = len(pkgs)
			return err
		})
		if err != nil {
			return err
		}
		inv = append(inv, d)
		d, err = timeIt(func() error {
			_, err := env.cmd(ctx, nil, "dpkg-query", "--admindir="+filepath.Join(rootfs, "var/lib/dpkg"), "-W")
			return err
		})
		if err != nil {
			return err
		}
		dpkg = append(dpkg, d)
		d, _ = timeIt(func() error {
			_, err := env.cmd(ctx, nil, "find", rootfs, "-name", "*.dist-info")
			return err
		})
		find = append(find, d)
	}
	fmt.Fprintf(env.out, "  %d packages found\n", n)
	env.row("runprov inventory (in process)", inv)
	env.row("dpkg-query -W (status file only, baseline)", dpkg)
	env.row("find -name '*.dist-info' (the walk alone, baseline)", find)
	if inv.median() > inventoryBudget {
		return fmt.Errorf("inventory median %v exceeds %v", inv.median().Round(time.Millisecond), inventoryBudget)
	}
	return nil
}

// debianBenchRootfs copies the files of this host's installed packages
// into rootfs until it holds about size bytes, with the host's dpkg status
// (every package it has installed).
func debianBenchRootfs(ctx context.Context, rootfs string, size int64) (int64, int, error) {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Package}\n").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("dpkg-query: %w", err)
	}
	var total int64
	files := 0
	for _, pkg := range strings.Fields(string(out)) {
		if total >= size {
			break
		}
		list, err := exec.CommandContext(ctx, "dpkg-query", "-L", pkg).Output()
		if err != nil {
			continue
		}
		for _, p := range strings.Fields(string(list)) {
			n, err := copyInto(rootfs, p)
			if err != nil {
				return 0, 0, err
			}
			if n > 0 {
				total += n
				files++
			}
		}
	}
	dpkg := filepath.Join(rootfs, "var/lib/dpkg")
	if err := os.MkdirAll(filepath.Join(dpkg, "info"), 0o755); err != nil {
		return 0, 0, err
	}
	os.MkdirAll(filepath.Join(dpkg, "updates"), 0o755)
	status, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		return 0, 0, err
	}
	return total, files, os.WriteFile(filepath.Join(dpkg, "status"), status, 0o644)
}

// copyInto copies one host path (file, directory or symlink, as it is) to
// the same place under root and returns the bytes of a copied file.
func copyInto(root, p string) (int64, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return 0, nil // dpkg lists diverted and removed files too
	}
	dst := filepath.Join(root, p)
	if _, err := os.Lstat(dst); err == nil {
		return 0, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		link, _ := os.Readlink(p)
		if st, err := os.Stat(p); err == nil && st.IsDir() && !filepath.IsAbs(link) {
			// lib -> usr/lib: make the target, so paths through the link resolve.
			os.MkdirAll(filepath.Join(filepath.Dir(dst), link), 0o755)
		}
		return 0, os.Symlink(link, dst)
	case fi.IsDir():
		return 0, os.Mkdir(dst, 0o755)
	case !fi.Mode().IsRegular():
		return 0, nil
	}
	src, err := os.Open(p)
	if err != nil {
		return 0, nil // unreadable host file: leave it out
	}
	defer src.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fi.Mode().Perm()|0o200)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}
