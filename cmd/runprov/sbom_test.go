package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/runprov/runprov/core/coretest"
	"github.com/runprov/runprov/plugins/history"
	"github.com/runprov/runprov/plugins/sbom"
	"github.com/runprov/runprov/plugins/sbom/sbomtest"
)

// layoutFromDir writes an OCI layout of a one-layer image whose layer is
// the tree at rootfs (modes kept, owners root, symlinks as they are) and
// returns it with the manifest digest. cfg edits the image config.
func layoutFromDir(t *testing.T, rootfs string, cfg func(*v1.Config)) (string, string) {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	mod := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	err := filepath.WalkDir(rootfs, func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == rootfs {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		var link string
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(rootfs, p)
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname, hdr.ModTime = 0, 0, "", "", mod
		hdr.AccessTime, hdr.ChangeTime, hdr.Format = time.Time{}, time.Time{}, tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	return writeLayerLayout(t, raw.Bytes(), func(c *v1.Config) {
		c.Env = []string{"PATH=/usr/bin:/bin"}
		c.Cmd = []string{"/bin/sh", "-c", "true"}
		if cfg != nil {
			cfg(c)
		}
	})
}

// copyHostPaths copies host paths (files, directories, symlinks as they
// are) into rootfs at the same places.
func copyHostPaths(t *testing.T, rootfs string, paths []string) {
	t.Helper()
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			continue // dpkg -L lists diversions and removed conffiles too
		}
		dst := filepath.Join(rootfs, p)
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			link, _ := os.Readlink(p)
			if st, serr := os.Stat(p); serr == nil && st.IsDir() && !filepath.IsAbs(link) {
				os.MkdirAll(filepath.Join(filepath.Dir(dst), link), 0o755) // lib -> usr/lib
			}
			err = os.Symlink(link, dst)
		case fi.IsDir():
			err = os.Mkdir(dst, fi.Mode().Perm())
		case fi.Mode().IsRegular():
			var data []byte
			if data, err = os.ReadFile(p); err == nil {
				err = os.WriteFile(dst, data, fi.Mode().Perm())
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// debianRootfs makes a Debian root filesystem from this host's own
// packages: the files of base-files and of the Python package that owns a
// dist-info directory, this host's dpkg status database (every package
// the host has installed), and busybox to run. editStatus may change the
// status file. It returns the rootfs and the dist-info directory copied.
func debianRootfs(t *testing.T, editStatus func(string) string) (string, string) {
	t.Helper()
	coretest.RequireBinary(t, "dpkg-query")
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		coretest.Unavailable(t, "/bin/busybox is missing: install busybox-static")
	}
	status, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		coretest.Unavailable(t, "this host has no dpkg status database: the test needs a Debian host")
	}
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	os.Mkdir(rootfs, 0o755)
	pkgs := []string{"base-files"}
	infos, _ := filepath.Glob("/usr/lib/python3/dist-packages/*.dist-info")
	var distInfo string
	for _, d := range infos {
		out, err := exec.Command("dpkg-query", "-S", d).Output()
		if err == nil {
			distInfo = d
			pkgs = append(pkgs, strings.TrimSpace(strings.SplitN(string(out), ":", 2)[0]))
			break
		}
	}
	for _, p := range pkgs {
		out, err := exec.Command("dpkg-query", "-L", p).Output()
		if err != nil {
			t.Fatalf("dpkg-query -L %s: %v", p, err)
		}
		copyHostPaths(t, rootfs, strings.Fields(string(out)))
	}
	if distInfo == "" { // a host without Debian's Python packages: one of its own
		distInfo = "/usr/lib/python3/dist-packages/example_pkg-1.2.3.dist-info"
		os.MkdirAll(filepath.Join(rootfs, distInfo), 0o755)
		os.WriteFile(filepath.Join(rootfs, distInfo, "METADATA"), []byte("Metadata-Version: 2.1\nName: example_pkg\nVersion: 1.2.3\n"), 0o644)
	}
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "usr/bin", "etc"} {
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
	s := string(status)
	if editStatus != nil {
		s = editStatus(s)
	}
	must(t, os.WriteFile(filepath.Join(rootfs, "var/lib/dpkg/status"), []byte(s), 0o644))
	must(t, os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"), 0o644))
	// /bin may be a link to usr/bin (merged /usr): put busybox where it leads.
	bin := filepath.Join(rootfs, "usr/bin")
	if fi, err := os.Lstat(filepath.Join(rootfs, "bin")); err != nil || fi.IsDir() {
		bin = filepath.Join(rootfs, "bin")
		os.MkdirAll(bin, 0o755)
	}
	must(t, os.WriteFile(filepath.Join(bin, "busybox"), bb, 0o755))
	for _, l := range []string{"sh", "true"} {
		os.Symlink("busybox", filepath.Join(bin, l))
	}
	return rootfs, distInfo
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dpkgQuery lists what dpkg-query says the rootfs has installed, as
// "name version arch" lines.
func dpkgQuery(t *testing.T, rootfs string) []string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(rootfs, "var/lib/dpkg"), "-W",
		"-f=${db:Status-Status} ${Package} ${Version} ${Architecture}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] != "not-installed" && f[0] != "config-files" {
			lines = append(lines, strings.Join(f[1:], " "))
		}
	}
	slices.Sort(lines)
	return lines
}

// cdxComponent is a component of a CycloneDX document.
type cdxComponent struct {
	Name, Version, Purl string
	Properties          []struct{ Name, Value string }
}

func (c cdxComponent) property(name string) string {
	for _, p := range c.Properties {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// sbomDocument runs image sbom in format, validates it against the
// official schema and returns it.
func sbomDocument(t *testing.T, store, image, format string) []byte {
	t.Helper()
	out, _ := mustCLI(t, 0, store, "image", "sbom", image, "--format", format)
	schema, err := sbomtest.SchemaFor(filepath.Join("..", "..", "testdata", "schemas", "sbom"), format)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatalf("image sbom --format %s: not JSON: %v", format, err)
	}
	if err := schema.Validate(inst); err != nil {
		t.Fatalf("image sbom --format %s does not validate: %v", format, err)
	}
	return []byte(out)
}

func cdxComponents(t *testing.T, doc []byte) []cdxComponent {
	t.Helper()
	var bom struct{ Components []cdxComponent }
	if err := json.Unmarshal(doc, &bom); err != nil {
		t.Fatal(err)
	}
	return bom.Components
}

// TestImageSBOMDebian: the SBOM of a Debian image lists every package
// dpkg-query lists, with the same versions, and the Python distribution's
// version from its dist-info; the inventory is taken at import.
func TestImageSBOMDebian(t *testing.T) {
	rootfs, distInfo := debianRootfs(t, nil)
	lay, d := layoutFromDir(t, rootfs, nil)
	store := newCLIStore(t)
	mustCLI(t, 0, store, "image", "import", lay)
	out, _ := mustCLI(t, 0, store, "query", "--csv", "SELECT count(*) FROM image_packages")
	if strings.HasSuffix(strings.TrimSpace(out), "\n0") || !strings.Contains(out, "\n") {
		t.Fatalf("no inventory after import:\n%s", out)
	}

	want := dpkgQuery(t, rootfs)
	if len(want) < 10 {
		t.Fatalf("dpkg-query lists only %d packages", len(want))
	}
	var got []string
	var python *cdxComponent
	comps := cdxComponents(t, sbomDocument(t, store, d, sbom.FormatCycloneDX))
	for i, c := range comps {
		if strings.HasPrefix(c.Purl, "pkg:deb/debian/") {
			_, q, _ := strings.Cut(c.Purl, "?")
			qs, _ := url.ParseQuery(q)
			got = append(got, c.Name+" "+c.Version+" "+qs.Get("arch"))
		}
		if c.property("runprov:location") == distInfo {
			python = &comps[i]
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("deb packages differ from dpkg-query: %d listed, dpkg-query %d\nfirst listed %.5q\nfirst wanted %.5q", len(got), len(want), got, want)
	}
	meta, err := os.ReadFile(filepath.Join(rootfs, distInfo, "METADATA"))
	if err != nil {
		t.Fatal(err)
	}
	version := regexp.MustCompile(`(?m)^Version: (.+)$`).FindSubmatch(meta)
	if python == nil || version == nil || python.Version != string(version[1]) || !strings.HasPrefix(python.Purl, "pkg:pypi/") {
		t.Errorf("the dist-info %s (Version %q) is listed as %+v", distInfo, version, python)
	}

	// SPDX lists the same packages, plus the image itself.
	var doc struct {
		Packages []struct{ Name, VersionInfo string }
	}
	if err := json.Unmarshal(sbomDocument(t, store, d[:16], sbom.FormatSPDX), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Packages) != len(comps)+1 {
		t.Errorf("spdx lists %d packages, cyclonedx %d components", len(doc.Packages), len(comps))
	}
	mustCLI(t, exitUsage, store, "image", "sbom", d, "--format", "xml")
}

// TestImageSBOMAlpine: an Alpine installed database in an image.
func TestImageSBOMAlpine(t *testing.T) {
	lay, d := layoutFromDir(t, filepath.Join("..", "..", "drivers", "inventory", "testdata", "alpine"), nil)
	store := newCLIStore(t)
	mustCLI(t, 0, store, "image", "import", lay)
	var got []string
	for _, c := range cdxComponents(t, sbomDocument(t, store, d, sbom.FormatCycloneDX)) {
		got = append(got, c.Purl)
	}
	want := []string{"pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64", "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64"}
	if !slices.Equal(got, want) {
		t.Errorf("alpine packages %v, want %v", got, want)
	}

	// An image stored before inventories existed gets one on first use.
	db, err := sql.Open("sqlite", filepath.Join(store, "runprov.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec("DELETE FROM image_packages; DELETE FROM image_inventories")
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := mustCLI(t, 0, store, "query", "--csv", "SELECT count(*) FROM image_packages")
	if !strings.HasSuffix(strings.TrimSpace(out), "\n0") {
		t.Fatalf("packages left after deleting the inventory:\n%s", out)
	}
	got = nil
	for _, c := range cdxComponents(t, sbomDocument(t, store, d, sbom.FormatCycloneDX)) {
		got = append(got, c.Purl)
	}
	if !slices.Equal(got, want) {
		t.Errorf("alpine packages taken on first use %v, want %v", got, want)
	}
}

// TestImageSBOMDiff: two runs whose images differ by one package version;
// diff names exactly that change, show summarises the packages.
func TestImageSBOMDiff(t *testing.T) {
	requireRunc(t)
	var from, to string
	bump := func(s string) string {
		re := regexp.MustCompile(`(?m)^Package: base-files\n((?:[^\n]+\n)*?)Version: ([^\n]+)\n`)
		m := re.FindStringSubmatch(s)
		if m == nil {
			t.Fatal("base-files is not in the status file")
		}
		from, to = m[2], m[2]+"+rebuilt1"
		return strings.Replace(s, m[0], "Package: base-files\n"+m[1]+"Version: "+to+"\n", 1)
	}
	rootA, _ := debianRootfs(t, nil)
	rootB, _ := debianRootfs(t, bump)
	layA, dA := layoutFromDir(t, rootA, nil)
	layB, dB := layoutFromDir(t, rootB, nil)
	store := newCLIStore(t)
	mustCLI(t, 0, store, "image", "import", layA)
	mustCLI(t, 0, store, "image", "import", layB)
	rs := &runStore{dir: store}
	var runs []string
	for _, d := range []string{dA, dB} {
		rs.image = d
		rs.commit = rs.add(t, "FROM IMAGE\nCMD [\"/bin/true\"]\n")
		r, errs, code := rs.run(t, "--no-input")
		if r == nil || code != 0 {
			t.Fatalf("run of %s: exit %d\n%s", d, code, errs)
		}
		runs = append(runs, r.ID)
	}
	t.Cleanup(func() { checkNoContainers(t, store) })

	out, _ := mustCLI(t, 1, store, "--json", "diff", runs[0], runs[1])
	var d history.Diff
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.Packages == nil {
		t.Fatalf("diff --json: %v\n%s", err, out)
	}
	want := []history.PackageChange{{Ecosystem: "deb", Name: "base-files", Arch: d.Packages.Changed[0].Arch, A: from, B: to}}
	if !slices.Equal(d.Packages.Changed, want) || len(d.Packages.Added)+len(d.Packages.Removed) != 0 || d.Packages.Same < 10 {
		t.Errorf("package diff %+v, want only %+v", d.Packages, want)
	}
	out, _ = mustCLI(t, 1, store, "diff", runs[0], runs[1])
	if !strings.Contains(out, "base-files "+from+" -> "+to) || !strings.Contains(out, "packages: 1 changed, 0 added, 0 removed") {
		t.Errorf("diff does not name the change:\n%s", out)
	}
	out, _ = mustCLI(t, 0, store, "show", runs[1])
	if !regexp.MustCompile(`packages +\d+: deb \d+, pypi \d+`).MatchString(out) {
		t.Errorf("show does not summarise the packages:\n%s", out)
	}
	out, _ = mustCLI(t, 0, store, "-v", "show", runs[1])
	if !strings.Contains(out, "deb base-files "+to) {
		t.Errorf("show -v does not list the packages")
	}
	out, _ = mustCLI(t, 0, store, "export", runs[1], "--format", "intoto")
	if !strings.Contains(out, "pkg:deb/debian/base-files@") {
		t.Errorf("the in-toto export does not list the packages")
	}
}

// TestImageCheck: an image that follows TRE guidance passes; one that runs
// as root without /scratch fails naming both.
func TestImageCheck(t *testing.T) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		coretest.Unavailable(t, "/bin/busybox is missing: install busybox-static")
	}
	mk := func(dirs []string, setuid bool) string {
		root := filepath.Join(t.TempDir(), "rootfs")
		for _, d := range append([]string{"bin", "etc"}, dirs...) {
			must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
		}
		must(t, os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755))
		os.Symlink("busybox", filepath.Join(root, "bin/sh"))
		must(t, os.Mkdir(filepath.Join(root, "tmp"), 0o755))
		must(t, os.Chmod(filepath.Join(root, "tmp"), fs.ModeSticky|0o777))
		if setuid {
			must(t, os.WriteFile(filepath.Join(root, "bin/su"), []byte("#!/bin/sh\n"), 0o755))
			must(t, os.Chmod(filepath.Join(root, "bin/su"), fs.ModeSetuid|0o755))
		}
		return root
	}
	goodLay, good := layoutFromDir(t, mk([]string{"safe_data", "safe_outputs", "scratch"}, false), func(c *v1.Config) {
		c.User = "1000:1000"
		c.Env = append(c.Env, "TMPDIR=/scratch", "TMP=/scratch")
	})
	badLay, bad := layoutFromDir(t, mk([]string{"safe_data", "safe_outputs"}, true), func(c *v1.Config) {
		c.Env = append(c.Env, "TMPDIR=/scratch", "TMP=/scratch")
	})
	store := newCLIStore(t)
	mustCLI(t, 0, store, "image", "import", goodLay)
	mustCLI(t, 0, store, "image", "import", badLay)

	out, _ := mustCLI(t, 0, store, "image", "check", good)
	if !strings.Contains(out, "all checks passed") {
		t.Errorf("check of a good image:\n%s", out)
	}
	out, _ = mustCLI(t, exitFindings, store, "image", "check", bad)
	for _, want := range []string{"FAIL scratch", "FAIL user", "FAIL setuid", "/bin/su", "3 check(s) failed: scratch, user, setuid"} {
		if !strings.Contains(out, want) {
			t.Errorf("check of a bad image lacks %q:\n%s", want, out)
		}
	}
	out, _ = mustCLI(t, exitFindings, store, "--json", "image", "check", bad)
	var rep sbom.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Passed || len(rep.Findings) != 10 {
		t.Errorf("check --json: %v\n%s", err, out)
	}
	mustCLI(t, exitRunprov, store, "image", "check", "sha256:0123")

	// approve --check refuses the bad image and approves the good one.
	_, errs := mustCLI(t, exitRunprov, store, "image", "approve", bad, "--check")
	if !strings.Contains(errs, "FAIL user") || !strings.Contains(errs, "nothing was approved") {
		t.Errorf("approve --check of a bad image:\n%s", errs)
	}
	mustCLI(t, 0, store, "image", "approve", good, "--check", "--note", "checked")
}

// TestSignedRecordAndInventory: a signed run lists its image's packages in
// the signed statement and verifies; a run signed before its image had an
// inventory (here: the inventory failed on a damaged rpm database, and
// came later) still verifies.
func TestSignedRecordAndInventory(t *testing.T) {
	requireRunc(t)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		coretest.Unavailable(t, "/bin/busybox is missing: install busybox-static")
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "etc", "var/lib/rpm"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755))
	for _, l := range []string{"sh", "true"} {
		os.Symlink("busybox", filepath.Join(root, "bin", l))
	}
	must(t, os.WriteFile(filepath.Join(root, "var/lib/rpm/rpmdb.sqlite"), []byte("not a database"), 0o644))
	lay, d := layoutFromDir(t, root, nil)
	store := newCLIStore(t)
	_, errs := mustCLI(t, 0, store, "image", "import", lay)
	if !strings.Contains(errs, "could not take the image's package inventory") {
		t.Errorf("import of an image whose inventory fails:\n%s", errs)
	}
	mustCLI(t, exitRunprov, store, "image", "sbom", d)
	rs := &runStore{dir: store, image: d}
	rs.commit = rs.add(t, "FROM IMAGE\nCMD [\"/bin/true\"]\n")
	t.Cleanup(func() { checkNoContainers(t, store) })
	alice, _ := newKeyPair(t, store, t.TempDir(), "alice")
	old, errs, code := rs.run(t, "--no-input", "--sign-key", alice+".key")
	if old == nil || code != 0 {
		t.Fatalf("run: exit %d\n%s", code, errs)
	}

	// The inventory arrives later (as a later runprov would take it).
	db, err := sql.Open("sqlite", filepath.Join(store, "runprov.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`INSERT INTO image_inventories(config_digest, created, packages) VALUES(?, '2026-01-01T00:00:00Z', 1);
		INSERT INTO image_packages(config_digest, ecosystem, name, version, purl, location) VALUES(?, 'rpm', 'bash', '5.1.8-6.el9', 'pkg:rpm/rocky/bash@5.1.8-6.el9', '/var/lib/rpm/rpmdb.sqlite')`,
		old.ConfigDigest, old.ConfigDigest)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := mustCLI(t, 0, store, "export", old.ID, "--format", "intoto"); !strings.Contains(out, "pkg:rpm/rocky/bash@5.1.8-6.el9") {
		t.Errorf("the export does not list the package")
	}
	mustCLI(t, 0, store, "verify", old.ID, "--key", alice+".pub")

	// A run signed now carries the package in its signed statement.
	cur, errs, code := rs.run(t, "--no-input", "--sign-key", alice+".key")
	if cur == nil || code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, errs)
	}
	env := filepath.Join(t.TempDir(), "run.dsse.json")
	mustCLI(t, 0, store, "export", cur.ID, "--format", "intoto", "--signed", "-o", env)
	data, _ := os.ReadFile(env)
	var envelope struct{ Payload []byte }
	if err := json.Unmarshal(data, &envelope); err != nil || !strings.Contains(string(envelope.Payload), "pkg:rpm/rocky/bash@5.1.8-6.el9") {
		t.Errorf("the signed statement does not list the package (%v)", err)
	}
	mustCLI(t, 0, store, "verify", cur.ID, "--key", alice+".pub")
}
