package slurm

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestOptions(t *testing.T) {
	got := Options(Job{Name: "n", CPUs: 0.5, MemoryBytes: 1 << 30, Timeout: 90 * time.Minute, ArrayTasks: 20})
	want := []string{"--job-name=n", "--cpus-per-task=1", "--mem=1024M", "--time=0-01:35:00", "--array=0-19"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Options = %q, want %q", got, want)
	}
	if o := Options(Job{}); len(o) != 0 {
		t.Fatalf("no limits: %q", o)
	}
}

func TestTimeLimit(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0-00:01:00", time.Second: "0-00:01:00", 61 * time.Second: "0-00:02:00", 25*time.Hour + 30*time.Minute: "1-01:30:00",
	} {
		if got := TimeLimit(d); got != want {
			t.Errorf("TimeLimit(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestScript(t *testing.T) {
	s, err := Script(Job{Output: "/a b/out", CPUs: 2}, "true\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "#!/bin/sh\n#SBATCH --output=\"/a b/out\"\n#SBATCH --cpus-per-task=2\ntrue\n"
	if s != want {
		t.Fatalf("Script = %q, want %q", s, want)
	}
	if _, err := Script(Job{Output: `/a"b`}, ""); err == nil {
		t.Fatal("a double quote in a directive was accepted")
	}
}

func TestRunBody(t *testing.T) {
	b := RunBody("/usr/bin/runprov", "/shared/it's store", []string{"aa", "bb"}, 0)
	for _, want := range []string{
		"0) run=aa ;;\n1) run=bb ;;\n",
		`exec >>'/shared/it'\''s store/runs'/"$run"/slurm.out 2>&1`,
		`exec /usr/bin/runprov --store '/shared/it'\''s store' exec-prepared "$run"`,
	} {
		if !strings.Contains(b, want) {
			t.Errorf("RunBody lacks %q:\n%s", want, b)
		}
	}
}

func TestParse(t *testing.T) {
	sq := parseSqueue("21_2|COMPLETED|None|vm|debug|2026-11-22T22:29:12\n5|PENDING|BeginTime|||N/A\n\n")
	if len(sq) != 2 || sq[0].ID != "21_2" || sq[0].Node != "vm" || sq[0].End.IsZero() || sq[0].Reason != "" ||
		sq[1].Reason != "BeginTime" || sq[1].Pending() != true || sq[1].Finished() || !sq[1].End.IsZero() {
		t.Fatalf("parseSqueue: %+v", sq)
	}
	sa := parseSacct("7|CANCELLED by 0|(null)|debug|0:0|2026-11-22T22:26:34\n8|TIMEOUT|vm|debug|0:15|Unknown\n", "sacct")
	if len(sa) != 2 || sa[0].State != "CANCELLED" || sa[0].By != "0" || sa[0].Node != "" || !sa[1].Finished() {
		t.Fatalf("parseSacct: %+v", sa)
	}
	if d := sa[0].Describe(); d != "slurm job 7 CANCELLED by uid 0 while pending" {
		t.Errorf("Describe = %q", d)
	}
	if d := sa[1].Describe(); d != "slurm job 8 TIMEOUT, exit code 0:15" {
		t.Errorf("Describe = %q", d)
	}
}
