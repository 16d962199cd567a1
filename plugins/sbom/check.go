package sbom

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/runprov/runprov/core"
)

// Check names, in the order Check reports them.
const (
	CheckSafeData      = "safe_data"
	CheckSafeOutputs   = "safe_outputs"
	CheckScratch       = "scratch"
	CheckUser          = "user"
	CheckTmpdir        = "tmpdir"
	CheckEntrypoint    = "entrypoint"
	CheckSetuid        = "setuid"
	CheckWorldWritable = "world_writable"
	CheckModelCache    = "model_cache"
	CheckSize          = "size"
)

// Finding is the result of one check.
type Finding struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Report is the checks of one image.
type Report struct {
	Image    *core.ResolvedImage `json:"image"`
	Findings []Finding           `json:"checks"`
	Passed   bool                `json:"passed"`
}

// Failed returns the findings that did not pass.
func (r *Report) Failed() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if !f.OK {
			out = append(out, f)
		}
	}
	return out
}

// CheckOptions tune Check.
type CheckOptions struct {
	// MaxSize is the largest unpacked size that passes (bytes; 0: 10 GiB).
	MaxSize  int64
	Progress core.Progress
}

// treDirs are the mount points the TRE layout uses.
var treDirs = []string{"/safe_data", "/safe_outputs", "/scratch"}

// tmpDirs may be world-writable: they are meant to be, with the sticky bit.
var tmpDirs = []string{"/tmp", "/var/tmp", "/dev/shm", "/run/lock"}

// Check checks img against TRE build guidance: the TRE directories exist,
// it does not run as root, TMPDIR and TMP point at /scratch, it says what to
// run, it has no setuid files, no world-writable directories outside the
// temporary ones, no model hub cache without offline mode, and a sane size.
func (s *Service) Check(ctx context.Context, img *core.ResolvedImage, opts CheckOptions) (*Report, error) {
	dir, _, err := s.Images.Unpack(ctx, img.ManifestDigest, opts.Progress)
	if err != nil {
		return nil, err
	}
	env := envMap(img.Config.Env)
	facts, err := s.Probe(ctx, dir, treDirs, []string{env["HF_HOME"], env["HF_HUB_CACHE"], env["HUGGINGFACE_HUB_CACHE"], env["TRANSFORMERS_CACHE"]})
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", img.ManifestDigest, err)
	}
	scan, err := s.Images.ScanLayers(ctx, img.ManifestDigest)
	if err != nil {
		return nil, err
	}
	return Guidance(img, facts, scan, opts.MaxSize), nil
}

// Guidance is Check's verdict over what was found, a pure function.
func Guidance(img *core.ResolvedImage, facts *core.RootfsFacts, scan *core.LayerScan, maxSize int64) *Report {
	if maxSize <= 0 {
		maxSize = 10 << 30
	}
	var fs findings
	env := envMap(img.Config.Env)
	fs.layout(facts)
	fs.config(img.Config, env)
	fs.files(scan)
	switch {
	case len(facts.Caches) > 0 && env["HF_HUB_OFFLINE"] != "1":
		fs.add(CheckModelCache, false, "model cache %s without HF_HUB_OFFLINE=1: set ENV HF_HUB_OFFLINE=1", strings.Join(facts.Caches, ", "))
	case len(facts.Caches) > 0:
		fs.add(CheckModelCache, true, "model cache %s, HF_HUB_OFFLINE=1", strings.Join(facts.Caches, ", "))
	default:
		fs.add(CheckModelCache, true, "no model hub cache")
	}
	fs.add(CheckSize, scan.Size <= maxSize, "%s unpacked, %s stored (limit %s)", core.HumanBytes(scan.Size), core.HumanBytes(img.Size), core.HumanBytes(maxSize))
	r := &Report{Image: img, Findings: fs, Passed: true}
	for _, f := range fs {
		r.Passed = r.Passed && f.OK
	}
	return r
}

// findings are Guidance's results so far, in check order.
type findings []Finding

func (fs *findings) add(check string, ok bool, format string, args ...any) {
	*fs = append(*fs, Finding{Check: check, OK: ok, Detail: fmt.Sprintf(format, args...)})
}

// layout checks the TRE directories.
func (fs *findings) layout(facts *core.RootfsFacts) {
	for _, d := range treDirs {
		if facts.Dirs[d] {
			fs.add(strings.TrimPrefix(d, "/"), true, "%s exists", d)
		} else {
			fs.add(strings.TrimPrefix(d, "/"), false, "%s is missing: add RUN mkdir -p %s to the image build", d, d)
		}
	}
}

// config checks the user, the temporary directory and what the image runs.
func (fs *findings) config(cfg core.ImageConfig, env map[string]string) {
	if isRoot(cfg.User) {
		fs.add(CheckUser, false, "the image runs as root (USER %q): add a non-root USER to the image build", orEmpty(cfg.User))
	} else {
		fs.add(CheckUser, true, "USER %s", cfg.User)
	}
	var badTmp []string
	for _, k := range []string{"TMPDIR", "TMP"} {
		if v := env[k]; v == "" || !under(v, "/scratch") {
			badTmp = append(badTmp, fmt.Sprintf("%s=%s", k, orEmpty(v)))
		}
	}
	if len(badTmp) > 0 {
		fs.add(CheckTmpdir, false, "%s: set ENV TMPDIR=/scratch TMP=/scratch", strings.Join(badTmp, ", "))
	} else {
		fs.add(CheckTmpdir, true, "TMPDIR and TMP point at /scratch")
	}
	if len(cfg.Entrypoint)+len(cfg.Cmd) == 0 {
		fs.add(CheckEntrypoint, false, "no ENTRYPOINT or CMD: add one saying what the image runs")
	} else {
		fs.add(CheckEntrypoint, true, "runs %s", strings.Join(append(slices.Clone(cfg.Entrypoint), cfg.Cmd...), " "))
	}
}

// files checks file modes as the layers give them.
func (fs *findings) files(scan *core.LayerScan) {
	if n := len(scan.Setuid); n > 0 {
		fs.add(CheckSetuid, false, "%d setuid or setgid file(s): %s", n, listSome(scan.Setuid))
	} else {
		fs.add(CheckSetuid, true, "no setuid or setgid files")
	}
	var ww []string
	for _, d := range scan.WorldWritable {
		if !slices.ContainsFunc(tmpDirs, func(t string) bool { return under(d, t) }) {
			ww = append(ww, d)
		}
	}
	if len(ww) > 0 {
		fs.add(CheckWorldWritable, false, "%d world-writable director(ies) outside /tmp: %s", len(ww), listSome(ww))
	} else {
		fs.add(CheckWorldWritable, true, "no world-writable directories outside /tmp")
	}
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	return m
}

// isRoot reports whether an image config USER runs as root: unset, root or
// uid 0, with or without a group.
func isRoot(user string) bool {
	u, _, _ := strings.Cut(user, ":")
	return u == "" || u == "root" || u == "0"
}

// under reports whether p is dir or inside it.
func under(p, dir string) bool {
	p = path.Clean(p)
	return p == dir || strings.HasPrefix(p, dir+"/")
}

func orEmpty(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// listSome names up to five paths and how many more there are.
func listSome(ps []string) string {
	if len(ps) <= 5 {
		return strings.Join(ps, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ps[:5], ", "), len(ps)-5)
}
