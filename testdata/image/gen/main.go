// Command gen writes the layer tars of the malicious-layer suite:
//
//	go run ./testdata/image/gen
//
// Each case is testdata/image/malicious/<case>/ with layer1.tar[,
// layer2.tar...] applied in order and case.txt saying what it tries; the
// expected outcome is want.txt, written by
// `go test ./drivers/image -run TestMaliciousLayers -update`.
//
// The suite unpacks into DIR/rootfs with a watched canary directory at
// DIR/canary, so "../canary" from the rootfs is a real host directory, and
// absolute targets name /tmp/runprov-malicious-escape, which must never
// appear.
package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

type entry struct {
	name string
	typ  byte
	mode int64
	body string
	link string
	maj  int64
	min  int64
	pax  map[string]string
}

func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, mode: 0o644, body: body}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}
func hardlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeLink, mode: 0o644, link: target}
}
func withMode(e entry, mode int64) entry { e.mode = mode; return e }
func device(name string, typ byte, maj, min int64) entry {
	return entry{name: name, typ: typ, mode: 0o666, maj: maj, min: min}
}

type layerCase struct {
	name   string
	desc   string
	layers [][]entry
}

// escape is the host path absolute targets aim at; the test checks it never appears.
const escape = "/tmp/runprov-malicious-escape"

var cases = []layerCase{
	{"dotdot-entry", `an entry named "../escaped" climbs out of the rootfs`,
		[][]entry{{file("../escaped", "pwned\n")}}},
	{"dotdot-nested", `"a/../../escaped" climbs out after a detour`,
		[][]entry{{dir("a/"), file("a/../../escaped", "pwned\n")}}},
	{"absolute-path", `an absolute entry name "/abs-file" is taken relative to the rootfs`,
		[][]entry{{file("/abs-file", "inside\n")}}},
	{"absolute-dotdot", `"/../canary/pwned": absolute and climbing`,
		[][]entry{{file("/../canary/pwned", "pwned\n")}}},
	{"symlink-abs-parent", `symlink "evil" -> ` + escape + `, then a file written through it`,
		[][]entry{{symlink("evil", escape), file("evil/pwned", "pwned\n")}}},
	{"symlink-rel-parent", `symlink "evil" -> ../canary (a real host directory beside the rootfs), then a file through it`,
		[][]entry{{symlink("evil", "../canary"), file("evil/pwned", "pwned\n")}}},
	{"symlink-parent-two-layers", `layer 1 makes "evil" -> ../../../canary, layer 2 writes "evil/secret" through it`,
		[][]entry{{symlink("evil", "../../../canary")}, {file("evil/secret", "overwritten\n")}}},
	{"symlink-nested-parent", `"a/b" -> ../../canary, then "a/b/pwned"`,
		[][]entry{{dir("a/"), symlink("a/b", "../../canary"), file("a/b/pwned", "pwned\n")}}},
	{"symlink-replaced-by-file", `symlink "evil" -> ../canary/secret, then a regular file "evil" (must replace the link, not write through it)`,
		[][]entry{{symlink("evil", "../canary/secret")}, {file("evil", "replaced\n")}}},
	{"symlink-replaced-by-dir", `symlink "lib" -> ../canary, then a directory "lib/" with a file (must replace the link)`,
		[][]entry{{symlink("lib", "../canary")}, {dir("lib/"), file("lib/x", "x\n")}}},
	{"symlink-absolute-normal", `absolute symlinks inside an image (bin/sh -> /bin/busybox) are normal and kept as they are`,
		[][]entry{{dir("bin/"), file("bin/busybox", "#!busybox\n"), symlink("bin/sh", "/bin/busybox"), symlink("usr", "/")}}},
	{"symlink-inside-parent", `"lib" -> usr/lib (merged /usr, a relative symlink inside the image), then "lib/libc.so": written to usr/lib, nothing to report`,
		[][]entry{{dir("usr/"), dir("usr/lib/"), symlink("lib", "usr/lib")}, {file("lib/libc.so", "elf\n")}}},
	{"symlink-loop", `"a" -> b, "b" -> a, then "a/file"`,
		[][]entry{{symlink("a", "b"), symlink("b", "a"), file("a/file", "x\n")}}},
	{"hardlink-dotdot", `hardlink "link" -> ../canary/secret (a host file)`,
		[][]entry{{hardlink("link", "../canary/secret")}}},
	{"hardlink-absolute", `hardlink "link" -> /etc/passwd: taken inside the rootfs, where it does not exist`,
		[][]entry{{hardlink("link", "/etc/passwd")}}},
	{"hardlink-through-symlink", `"up" -> ../.., then hardlink "link" -> up/etc/hostname: resolved inside the rootfs`,
		[][]entry{{dir("etc/"), file("etc/hostname", "box\n"), symlink("up", "../.."), hardlink("link", "up/etc/hostname")}}},
	{"hardlink-to-dir", `hardlink "l" -> directory "d"`,
		[][]entry{{dir("d/"), hardlink("l", "d")}}},
	{"device-nodes", `a character device (1:1, /dev/mem) and a block device (8:0)`,
		[][]entry{{dir("dev/"), device("dev/mem", tar.TypeChar, 1, 1), device("dev/sda", tar.TypeBlock, 8, 0)}}},
	{"setuid-setgid", `setuid and setgid files and a setgid directory`,
		[][]entry{{dir("bin/"), withMode(file("bin/su", "su\n"), 0o4755), withMode(file("bin/wall", "wall\n"), 0o2755),
			withMode(dir("var/"), 0o755), withMode(dir("var/mail/"), 0o2775), withMode(file("bin/both", "x\n"), 0o6711)}}},
	{"capability-xattr", `a file with a security.capability extended attribute (file capabilities)`,
		[][]entry{{entry{name: "ping", typ: tar.TypeReg, mode: 0o755, body: "ping\n",
			pax: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00"}}}}},
	{"whiteout-dotdot-name", `whiteout "a/.wh..." names ".." (the parent of a)`,
		[][]entry{{dir("a/"), file("a/f", "x\n")}, {file("a/.wh...", "")}}},
	{"whiteout-dotdot-path", `whiteout "../.wh.canary" lies outside the rootfs`,
		[][]entry{{file("../.wh.canary", "")}}},
	{"whiteout-through-symlink", `layer 1: "evil" -> ../canary; layer 2 whites out "evil/secret"`,
		[][]entry{{symlink("evil", "../canary")}, {file("evil/.wh.secret", "")}}},
	{"opaque-through-symlink", `layer 1: files and "evil" -> ../canary; layer 2: opaque whiteout "evil/.wh..wh..opq"`,
		[][]entry{{file("keep", "x\n"), symlink("evil", "../canary")}, {file("evil/.wh..wh..opq", "")}}},
	{"file-replaces-dir", `layer 1: directory "etc" with files; layer 2: a regular file "etc"`,
		[][]entry{{dir("etc/"), file("etc/passwd", "root\n"), dir("etc/sub/"), file("etc/sub/x", "x\n")}, {file("etc", "now a file\n")}}},
	{"file-under-file", `"f" is a file, then "f/x"`,
		[][]entry{{file("f", "x\n"), file("f/x", "x\n")}}},
	{"rootfs-as-symlink", `an entry "./" that is a symlink to the host's /`,
		[][]entry{{symlink("./", "/")}}},
}

func main() {
	out := filepath.Join("testdata", "image", "malicious")
	for _, c := range cases {
		d := filepath.Join(out, c.name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			fail(err)
		}
		for i, l := range c.layers {
			data, err := layerTar(l)
			if err != nil {
				fail(fmt.Errorf("%s: %w", c.name, err))
			}
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("layer%d.tar", i+1)), data, 0o644); err != nil {
				fail(err)
			}
		}
		if err := os.WriteFile(filepath.Join(d, "case.txt"), []byte(c.desc+"\n"), 0o644); err != nil {
			fail(err)
		}
	}
}

var epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func layerTar(entries []entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body)),
			Devmajor: e.maj, Devminor: e.min, ModTime: epoch, Format: tar.FormatPAX, PAXRecords: e.pax}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gen:", err)
	os.Exit(1)
}
