package history

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/core/coretest"
	"github.com/runprov/runprov/drivers/sqlite/sqlitetest"
)

// pair returns two runs of one commit that differ only in what every run
// has of its own: id, times, its default outputs directory.
func pair(outputs int) (*core.Run, *core.Run) {
	a, b := sqlitetest.SyntheticRun(1, outputs), sqlitetest.SyntheticRun(2, outputs)
	b.Commit, b.RunfileBlob, b.ImageDigest, b.ConfigDigest = a.Commit, a.RunfileBlob, a.ImageDigest, a.ConfigDigest
	b.Args, b.Argv, b.Hostname, b.Inputs = a.Args, a.Argv, a.Hostname, a.Inputs
	b.Status, b.ExitCode, b.Reason, b.Steps = a.Status, a.ExitCode, a.Reason, a.Steps
	b.Outputs = slices.Clone(a.Outputs)
	for _, r := range []*core.Run{&a, &b} {
		r.Mounts = []core.RunMount{
			{Kind: core.MountInput, Name: "data", Source: "/data/in", Target: "/safe_data", ReadOnly: true},
			{Kind: core.MountOutput, Source: "/store/runs/" + r.ID + "/outputs", Target: "/safe_outputs"},
		}
		r.Env = append(r.Env, "RUNPROV_RUN="+r.ID)
	}
	return &a, &b
}

func TestCompareEquivalent(t *testing.T) {
	a, b := pair(20)
	k := &core.SystemKernel{KernelRelease: "6.1.0", Sysctls: map[string]string{"vm.swappiness": "60"}}
	a.SystemKernelSHA256, b.SystemKernelSHA256 = k.SHA256(), k.SHA256()
	d := Compare(Side{Run: a, SystemKernel: k}, Side{Run: b, SystemKernel: k})
	if !d.Equivalent {
		t.Fatalf("two runs of one commit on one input differ: %+v", d)
	}
	if d.SystemKernel != nil || d.Outputs.Same != 20 || d.Inputs.Same != 1 {
		t.Fatalf("kernel %+v, outputs same %d, inputs same %d", d.SystemKernel, d.Outputs.Same, d.Inputs.Same)
	}
	if d.DurationSeconds[0] == d.DurationSeconds[1] {
		t.Errorf("durations %v: the fixture's runs take different times", d.DurationSeconds)
	}
}

func TestCompareChangedInput(t *testing.T) {
	a, b := pair(3)
	b.Inputs = []core.FileRecord{{Name: "data", Path: "table.csv", Size: 1000, SHA256: sqlitetest.Hex64("other")}}
	d := Compare(Side{Run: a}, Side{Run: b})
	if d.Equivalent {
		t.Fatal("a changed input hash: runs reported equivalent")
	}
	if len(d.Inputs.Changed) != 1 || d.Inputs.Changed[0].Path != "table.csv" || d.Inputs.Changed[0].Name != "data" {
		t.Fatalf("inputs diff %+v; want table.csv of data changed", d.Inputs)
	}
}

func TestCompareSections(t *testing.T) {
	a, b := pair(0)
	b.Args = map[string]string{"N": "2", "EXTRA": "x"}
	b.Env = append(slices.Clone(b.Env), "LANG=C")
	b.Mounts = append(b.Mounts[:1:1], core.RunMount{Kind: core.MountOutput, Source: "/elsewhere", Target: "/safe_outputs"},
		core.RunMount{Kind: core.MountScratch, Target: "/scratch", Size: 1 << 20})
	b.ImageDigest = "sha256:" + sqlitetest.Hex64("new image")
	b.RuntimeVersion = "1.2.0"
	b.Hostname = "elsewhere"
	ec := 3
	b.ExitCode, b.Status = &ec, core.RunFailed
	b.Commit, b.RunfileBlob = sqlitetest.Hex64("c2")[:40], sqlitetest.Hex64("b2")[:40]
	ka := &core.SystemKernel{KernelRelease: "6.1.0-1", Sysctls: map[string]string{"vm.swappiness": "60", "kernel.pid_max": "4194304"},
		Modules: []string{"ext4", "overlay"}}
	kb := &core.SystemKernel{KernelRelease: "6.1.0-2", Sysctls: map[string]string{"vm.swappiness": "10", "kernel.pid_max": "4194304"},
		Modules: []string{"ext4", "br_netfilter"}}
	a.SystemKernelSHA256, b.SystemKernelSHA256 = ka.SHA256(), kb.SHA256()
	rfA := []byte("FROM x@sha256:00\nUSER 1000\nCMD [\"a\"]\n")
	rfB := []byte("FROM x@sha256:00\nUSER 1000\nCMD [\"b\"]\nLABEL k=v\n")
	d := Compare(Side{Run: a, Runfile: rfA, SystemKernel: ka}, Side{Run: b, Runfile: rfB, SystemKernel: kb})
	if d.Equivalent {
		t.Fatal("reported equivalent")
	}
	has := func(sec []Change, field string, av, bv any) {
		t.Helper()
		for _, c := range sec {
			if c.Field == field {
				if fmt.Sprint(c.A) != fmt.Sprint(av) || fmt.Sprint(c.B) != fmt.Sprint(bv) {
					t.Errorf("%s: %v -> %v, want %v -> %v", field, c.A, c.B, av, bv)
				}
				return
			}
		}
		t.Errorf("no change of %s in %+v", field, sec)
	}
	has(d.Args, "N", "1", "2")
	has(d.Args, "EXTRA", nil, "x")
	has(d.Env, "LANG", nil, "C")
	has(d.Image, "image_digest", a.ImageDigest, b.ImageDigest)
	has(d.Runtime, "runtime_version", "1.1.5", "1.2.0")
	has(d.Host, "hostname", "node1", "elsewhere")
	has(d.Exit, "exit_code", 1, 3)
	has(d.Mounts, "scratch /scratch", nil, "tmpfs -> /scratch (rw) size=1048576")
	has(d.Mounts, "output /safe_outputs source", "/store/runs/"+a.ID+"/outputs", "/elsewhere")
	has(d.Runfile, "commit", a.Commit, b.Commit)
	for _, c := range d.Env {
		if c.Field == "RUNPROV_RUN" {
			t.Errorf("the runs' own ids count as an env difference: %+v", c)
		}
	}
	for _, c := range d.Mounts {
		if strings.HasSuffix(c.Field, " source") && !c.Info {
			t.Errorf("a mount's host source counts as a difference: %+v", c)
		}
	}
	if !strings.Contains(d.RunfileDiff, "-CMD [\"a\"]\n+CMD [\"b\"]\n+LABEL k=v\n") {
		t.Errorf("runfile diff:\n%s", d.RunfileDiff)
	}
	kd := d.SystemKernel
	if kd == nil || !kd.Significant || !strings.Contains(kd.Summary, "kernel 6.1.0-1 -> 6.1.0-2") || !strings.Contains(kd.Summary, "1 sysctl") {
		t.Fatalf("kernel diff %+v", kd)
	}
	has(kd.Changes, "sysctls.vm.swappiness", "60", "10")
	has(kd.Changes, "kernel_release", "6.1.0-1", "6.1.0-2")
	var mods []string
	for _, c := range kd.Changes {
		if c.Field == "modules" {
			mods = append(mods, fmt.Sprint(c.A, "->", c.B))
		}
	}
	if strings.Join(mods, " ") != "<nil>->br_netfilter overlay-><nil>" {
		t.Errorf("module changes %v", mods)
	}
}

func TestCompareFiles10k(t *testing.T) {
	a, b := pair(10000)
	for i := range 100 {
		b.Outputs[i*7].SHA256 = sqlitetest.Hex64(fmt.Sprint("changed", i))
	}
	b.Outputs = append(b.Outputs[:9950], core.FileRecord{Name: "/safe_outputs", Path: "zz-new", SHA256: sqlitetest.Hex64("new")})
	start := time.Now()
	d := Compare(Side{Run: a}, Side{Run: b})
	t.Logf("diff of two runs of 10,000 outputs: %v", time.Since(start))
	if len(d.Outputs.Changed) != 100 || len(d.Outputs.Removed) != 50 || len(d.Outputs.Added) != 1 || d.Outputs.Same != 9850 {
		t.Fatalf("changed %d removed %d added %d same %d", len(d.Outputs.Changed), len(d.Outputs.Removed), len(d.Outputs.Added), d.Outputs.Same)
	}
	if d.Outputs.Changed[0].Path != "out/00000.txt" || d.Outputs.Removed[0].Path != "out/09950.txt" {
		t.Fatalf("first changed %s, first removed %s", d.Outputs.Changed[0].Path, d.Outputs.Removed[0].Path)
	}
}

func BenchmarkCompare10k(b *testing.B) {
	x, y := pair(10000)
	for i := range 100 {
		y.Outputs[i].SHA256 = "0"
	}
	for b.Loop() {
		Compare(Side{Run: x}, Side{Run: y})
	}
}

// TestUnifiedMatchesDiff checks Unified against diff -u on the same texts.
func TestUnifiedMatchesDiff(t *testing.T) {
	diffBin := coretest.RequireBinary(t, "diff")
	cases := []struct{ a, b string }{
		{"a\nb\nc\n", "a\nB\nc\n"},
		{"", "new\n"},
		{"old\n", ""},
		{"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n", "1\n2\nx\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n14\n15\n16\n"},
		{"no newline", "no newline\n"},
		{"FROM a\nUSER 1\nCMD x\n", "FROM b\nUSER 1\nCMD x\nLABEL a=b\n"},
	}
	dir := t.TempDir()
	for i, tc := range cases {
		fa, fb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		os.WriteFile(fa, []byte(tc.a), 0o644)
		os.WriteFile(fb, []byte(tc.b), 0o644)
		out, _ := exec.Command(diffBin, "-u", "--label", "A", "--label", "B", fa, fb).Output()
		if got := Unified("A", "B", []byte(tc.a), []byte(tc.b), 3); got != string(out) {
			t.Errorf("case %d: Unified\n%s\ndiff -u\n%s", i, got, out)
		}
	}
	if Unified("A", "B", []byte("same\n"), []byte("same\n"), 3) != "" {
		t.Error("equal texts give a diff")
	}
}

func TestJudge(t *testing.T) {
	a, b := pair(3)
	v := Judge(a, b)
	if !v.Identical || v.String() != BitForBit {
		t.Fatalf("identical outputs: %+v %q", v, v.String())
	}
	b.Outputs[1].SHA256 = sqlitetest.Hex64("time")
	v = Judge(a, b)
	if v.Identical || v.String() != "not reproduced: changed /safe_outputs/out/00001.txt" {
		t.Fatalf("a changed output: %q", v.String())
	}
	ec := 2
	b.ExitCode = &ec
	b.Outputs = b.Outputs[:1]
	v = Judge(a, b)
	if want := "not reproduced: ended failed 1 -> failed 2; missing /safe_outputs/out/00001.txt, /safe_outputs/out/00002.txt"; v.String() != want {
		t.Fatalf("verdict %q, want %q", v.String(), want)
	}
}
