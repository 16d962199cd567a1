package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/history"
)

func newShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show RUN",
		Short: "Show everything recorded of one run",
		Long: `Show the record of a run: the Runfile commit, the image digests, the
arguments, environment, mounts and limits, the runtime, the host and its
SystemKernel snapshot, each step's exit status and times, and every input and
output file with its size and sha256, and the packages in the image (counts
per ecosystem; every package with -v). RUN is any unique prefix of a run id
(see runprov runs). With --json the record is printed as runprov export
--format json writes it; with -v the full SystemKernel snapshot is shown.`,
		Args: exactArgs("show", "which run? (runprov runs lists them; last is the newest)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			rec, err := loadRecord(cmd.Context(), a, args[0])
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, rec)
			}
			return printRecord(a.stdout, rec, a.store.Layout(), a.verbose)
		},
	}
}

// loadRecord reads a run and what it points to in other tables. A missing
// snapshot or environment row is logged, not fatal: the run is still worth
// showing.
func loadRecord(ctx context.Context, a *app, prefix string) (*history.Record, error) {
	t, err := a.openRead(ctx)
	if err != nil {
		return nil, err
	}
	st := t.store
	r, err := st.Run(ctx, prefix)
	if err != nil {
		return nil, err
	}
	rec := &history.Record{Run: *r}
	if r.SystemKernelSHA256 != "" {
		if rec.SystemKernel, err = st.SystemKernel(ctx, r.SystemKernelSHA256); err != nil {
			if !errors.Is(err, core.ErrNotFound) {
				return nil, err
			}
			a.log.Warn("the run's system kernel snapshot is missing", "run", r.ID, "err", err)
		}
	}
	if r.EnvironmentSHA256 != "" {
		if rec.Environment, err = st.Environment(ctx, r.EnvironmentSHA256); err != nil {
			if !errors.Is(err, core.ErrNotFound) {
				return nil, err
			}
			a.log.Warn("the run's environment row is missing", "run", r.ID, "err", err)
		}
	}
	rec.Signature = runSignature(ctx, a, st, r.ID) // sign.go
	rec.Packages = recordPackages(ctx, a, st, r.ConfigDigest)
	return rec, nil
}

// runfileText reads the Runfile a run used from the stored repository; nil
// (with a warning) when the commit is not in this store.
func runfileText(ctx context.Context, a *app, r *core.Run) []byte {
	t, err := a.openRead(ctx)
	if err != nil {
		return nil
	}
	data, _, err := t.consumer.Cat(ctx, r.Commit+":"+r.Path)
	if err != nil {
		a.log.Warn("cannot read the run's Runfile", "run", core.ShortRunID(r.ID), "commit", r.Commit, "err", err)
		return nil
	}
	return data
}

func printRecord(w io.Writer, rec *history.Record, layout core.Layout, verbose bool) error {
	r := &rec.Run
	p := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-12s %s\n", label, fmt.Sprintf(format, args...))
	}
	p("run", "%s", r.ID)
	p("status", "%s", statusText(r))
	p("created", "%s", timeText(r.Created))
	if !r.Started.IsZero() {
		p("started", "%s", timeText(r.Started))
	}
	if !r.Ended.IsZero() {
		p("ended", "%s (took %s)", timeText(r.Ended), durationText(history.Duration(r)))
	}
	if r.ReproduceOf != "" {
		p("reproduces", "%s: %s", r.ReproduceOf, orDash(r.Verdict))
	}
	if r.Note != "" {
		p("note", "%s", r.Note)
	}
	if len(r.Tags) > 0 {
		p("tags", "%s", strings.Join(r.Tags, " "))
	}
	printWhat(p, rec, verbose)
	printHow(p, r)
	printWhere(p, rec, verbose)
	for _, s := range r.Steps {
		line := fmt.Sprintf("#%d %s: exit %d", s.Index, quoteArgv(s.Argv), s.ExitCode)
		if !s.Start.IsZero() && !s.End.IsZero() {
			line += fmt.Sprintf(" (%s)", durationText(s.End.Sub(s.Start)))
		}
		p("step", "%s", line)
	}
	printFiles(w, "inputs", r.Inputs)
	if len(r.Inputs) > 0 {
		p("hashed", "%s", inputsHashedText(r))
	}
	printFiles(w, "outputs", r.Outputs)
	p("signed", "%s", signatureText(rec.Signature)) // sign.go
	if dir := layout.Run(r.ID); dirExists(dir) {
		p("logs", "%s", dir)
		p("", "see: runprov logs %s", core.ShortRunID(r.ID))
	}
	return nil
}

// recordLine prints one labelled line of show.
type recordLine func(label, format string, args ...any)

// printWhat prints what ran: the Runfile, its labels, the image and the
// packages in it.
func printWhat(p recordLine, rec *history.Record, verbose bool) {
	r := &rec.Run
	p("runfile", "%s in repo %s at commit %s (blob %s)", r.Path, r.Repo, r.Commit, r.RunfileBlob)
	p("", "see: runprov cat %s:%s", shortHash(r.Commit), r.Path)
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		p("label", "%s=%s", k, r.Labels[k])
	}
	p("image", "%s", r.ImageRef)
	p("", "manifest %s", r.ImageDigest)
	if r.IndexDigest != "" {
		p("", "index    %s", r.IndexDigest)
	}
	if r.ConfigDigest != "" {
		p("", "config   %s", r.ConfigDigest)
	}
	p("", "approved %s", yesNo(r.Approved))
	if ap := r.Approval; ap != nil {
		p("", "approval key %s, envelope sha256:%s", ap.KeyID, ap.SHA256)
	}
	printPackages(p, rec.Packages, r.ImageDigest, verbose)
}

// printHow prints how it ran: command, arguments, environment, user,
// mounts, limits, devices, runtime and executor.
func printHow(p recordLine, r *core.Run) {
	p("argv", "%s", quoteArgv(r.Argv))
	for _, k := range slices.Sorted(maps.Keys(r.Args)) {
		p("arg", "%s=%s", k, r.Args[k])
	}
	for _, e := range r.Env {
		p("env", "%s", e)
	}
	p("user", "%s", r.User)
	if r.Workdir != "" {
		p("workdir", "%s", r.Workdir)
	}
	for _, m := range r.Mounts {
		p("mount", "%s", mountLine(m))
	}
	if l := limitsText(r.Limits); l != "" {
		p("limits", "%s", l)
	}
	for _, d := range r.Devices {
		p("device", "%s", d)
	}
	for _, c := range r.CDISpecs {
		p("cdi spec", "%s sha256:%s", c.Path, c.SHA256)
	}
	rt := strings.TrimSpace(r.Runtime + " " + r.RuntimeVersion)
	if r.WeakerSandbox {
		rt += " (weaker sandbox allowed with --allow-weaker-sandbox)"
	}
	p("runtime", "%s", rt)
	ex := r.Executor
	if r.Slurm != nil {
		ex += fmt.Sprintf(" (job %s", r.Slurm.JobID)
		if r.Slurm.ArrayTask != nil {
			ex += fmt.Sprintf(" task %d", *r.Slurm.ArrayTask)
		}
		if r.Slurm.Node != "" {
			ex += " on " + r.Slurm.Node
		}
		if r.Slurm.Partition != "" {
			ex += ", partition " + r.Slurm.Partition
		}
		ex += ")"
	}
	p("executor", "%s", ex)
}

// printWhere prints where it ran: the host, its user, the system kernel
// snapshot (all of it with verbose) and the drift since the last run.
func printWhere(p recordLine, rec *history.Record, verbose bool) {
	r := &rec.Run
	p("host", "%s", orDash(r.Hostname))
	if e := rec.Environment; e != nil {
		p("", "user %s (uid %d, gid %d, groups %s)", orDash(e.User), e.UID, e.GID, intsText(e.Groups))
	}
	if k := rec.SystemKernel; k != nil {
		p("system", "%s %s, %s, %s", k.KernelRelease, k.Arch, orDash(k.OSRelease), k.Runtime.String())
		p("", "%s, %d CPUs, %d MiB", orDash(k.CPUModel), k.CPUCount, k.MemTotalBytes>>20)
		p("", "%d sysctls, %d modules, %d kernel config options (snapshot %s)", len(k.Sysctls), len(k.Modules), len(k.KernelConfig), shortHash(r.SystemKernelSHA256))
		if g := k.GPU; g != nil {
			printGPU(p, g)
		}
		if verbose {
			p("cmdline", "%s", k.Cmdline)
			for _, n := range slices.Sorted(maps.Keys(k.Sysctls)) {
				p("sysctl", "%s = %s", n, k.Sysctls[n])
			}
			p("modules", "%s", strings.Join(k.Modules, " "))
			for _, n := range slices.Sorted(maps.Keys(k.KernelConfig)) {
				p("config", "%s=%s", n, k.KernelConfig[n])
			}
		} else {
			p("", "(all of it with -v)")
		}
		for _, src := range slices.Sorted(maps.Keys(k.Errors)) {
			p("unread", "%s: %s", src, k.Errors[src])
		}
	} else if r.SystemKernelSHA256 != "" {
		p("system", "snapshot %s (missing from the store)", r.SystemKernelSHA256)
	}
	if r.Drift != "" {
		p("drift", "%s", r.Drift)
	}
}

func printFiles(w io.Writer, label string, files []core.FileRecord) {
	var total int64
	for _, f := range files {
		total += f.Size
	}
	fmt.Fprintf(w, "%-12s %d files, %s\n", label, len(files), core.HumanBytes(total))
	for _, f := range files {
		name := history.FileLabel(f.Name, f.Path)
		if f.Link != "" {
			fmt.Fprintf(w, "  %s -> %s\n", name, f.Link)
			continue
		}
		cached := ""
		if !f.CachedAt.IsZero() {
			cached = "  (cached)"
		}
		fmt.Fprintf(w, "  %s  %s  sha256:%s%s\n", name, core.HumanBytes(f.Size), f.SHA256, cached)
	}
}

// inputsHashedText says how many input files took their sha256 from the
// input cache, and when the oldest input hash was computed.
func inputsHashedText(r *core.Run) string {
	files := 0
	for _, f := range r.Inputs {
		if f.Link == "" {
			files++
		}
	}
	if r.InputsCached == 0 {
		return fmt.Sprintf("all %d input files read in full by this run", files)
	}
	return fmt.Sprintf("%d of %d input files unchanged since hashed (sha256 from the input cache), the oldest hash from %s",
		r.InputsCached, files, timeText(r.InputsHashedAt))
}

func statusText(r *core.Run) string {
	s := string(r.Status)
	if r.ExitCode != nil {
		s += fmt.Sprintf(" (exit %d)", *r.ExitCode)
	}
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	return s
}

func mountLine(m core.RunMount) string {
	src := m.Source
	if src == "" {
		src = "tmpfs"
	}
	kind := m.Kind
	if m.Name != "" {
		kind += " " + m.Name
	}
	mode := "rw"
	if m.ReadOnly {
		mode = "ro"
	}
	s := fmt.Sprintf("%s: %s -> %s (%s)", kind, src, m.Target, mode)
	if m.Size > 0 {
		s += " size " + core.HumanBytes(m.Size)
	}
	return s
}

func limitsText(l core.RunLimits) string {
	var parts []string
	if l.CPUs > 0 {
		parts = append(parts, fmt.Sprintf("cpus=%g", l.CPUs))
	}
	if l.MemoryBytes > 0 {
		parts = append(parts, "memory="+core.HumanBytes(l.MemoryBytes))
	}
	if l.Pids > 0 {
		parts = append(parts, fmt.Sprintf("pids=%d", l.Pids))
	}
	if l.Timeout > 0 {
		parts = append(parts, "timeout="+l.Timeout.String())
	}
	s := strings.Join(parts, " ")
	if l.Note != "" {
		s += " (" + l.Note + ")"
	}
	return strings.TrimSpace(s)
}

func timeText(t time.Time) string {
	return history.TermTime(t)
}

// durationText rounds for people: 1.234s, 2m3s, 25ms.
func durationText(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func quoteArgv(argv []string) string {
	out := make([]string, len(argv))
	for i, s := range argv {
		if s == "" || strings.ContainsAny(s, " \t\n'\"\\$") {
			s = "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
		out[i] = s
	}
	return strings.Join(out, " ")
}

func intsText(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dirExists(p string) bool {
	fi, err := os.Stat(filepath.Clean(p))
	return err == nil && fi.IsDir()
}

// printGPU writes the GPU facts of a snapshot.
func printGPU(p recordLine, g *core.GPUInfo) {
	if g.NVIDIADriver != "" {
		p("gpu", "nvidia driver %s", g.NVIDIADriver)
	}
	if g.AMDGPUVersion != "" {
		p("gpu", "amdgpu %s", g.AMDGPUVersion)
	}
	for _, d := range g.Devices {
		p("gpu", "%s %s at %s", d.Vendor, orDash(d.Model), d.BusID)
	}
	if len(g.DevNodes) > 0 {
		p("gpu", "%s", strings.Join(g.DevNodes, " "))
	}
}
