package sbom

import (
	"slices"
	"testing"

	"github.com/runprov/runprov/core"
)

func TestGuidance(t *testing.T) {
	allDirs := map[string]bool{"/safe_data": true, "/safe_outputs": true, "/scratch": true}
	good := core.ImageConfig{User: "1000:1000", Env: []string{"TMPDIR=/scratch", "TMP=/scratch/tmp"}, Cmd: []string{"/app/run"}}
	cases := []struct {
		name   string
		cfg    core.ImageConfig
		facts  core.RootfsFacts
		scan   core.LayerScan
		failed []string
	}{
		{"follows the guidance", good, core.RootfsFacts{Dirs: allDirs}, core.LayerScan{WorldWritable: []string{"/tmp", "/var/tmp"}, Size: 1 << 20}, nil},
		{"root, no scratch", core.ImageConfig{Env: good.Env, Cmd: good.Cmd}, core.RootfsFacts{Dirs: map[string]bool{"/safe_data": true, "/safe_outputs": true}}, core.LayerScan{}, []string{CheckScratch, CheckUser}},
		{"uid 0 with a group is root", core.ImageConfig{User: "0:100", Env: good.Env, Entrypoint: []string{"/x"}}, core.RootfsFacts{Dirs: allDirs}, core.LayerScan{}, []string{CheckUser}},
		{"tmpdir elsewhere, nothing to run", core.ImageConfig{User: "app", Env: []string{"TMPDIR=/tmp"}}, core.RootfsFacts{Dirs: allDirs}, core.LayerScan{}, []string{CheckTmpdir, CheckEntrypoint}},
		{"setuid and world-writable", good, core.RootfsFacts{Dirs: allDirs}, core.LayerScan{Setuid: []string{"/usr/bin/su"}, WorldWritable: []string{"/opt/shared", "/tmp/x"}}, []string{CheckSetuid, CheckWorldWritable}},
		{"hf cache online", good, core.RootfsFacts{Dirs: allDirs, Caches: []string{"/root/.cache/huggingface"}}, core.LayerScan{}, []string{CheckModelCache}},
		{"hf cache offline", core.ImageConfig{User: good.User, Cmd: good.Cmd, Env: append(slices.Clone(good.Env), "HF_HUB_OFFLINE=1")}, core.RootfsFacts{Dirs: allDirs, Caches: []string{"/models"}}, core.LayerScan{}, nil},
		{"too large", good, core.RootfsFacts{Dirs: allDirs}, core.LayerScan{Size: 11 << 30}, []string{CheckSize}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := Guidance(&core.ResolvedImage{Config: c.cfg}, &c.facts, &c.scan, 0)
			var failed []string
			for _, f := range rep.Failed() {
				failed = append(failed, f.Check)
				if f.Detail == "" {
					t.Errorf("%s: no detail", f.Check)
				}
			}
			if !slices.Equal(failed, c.failed) || rep.Passed != (len(c.failed) == 0) {
				t.Errorf("failed %v (passed %v), want %v\n%+v", failed, rep.Passed, c.failed, rep.Findings)
			}
			if len(rep.Findings) != 10 {
				t.Errorf("%d findings, want one per check", len(rep.Findings))
			}
		})
	}
}
