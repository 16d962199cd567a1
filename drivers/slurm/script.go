package slurm

import (
	"fmt"
	"strings"

	"github.com/runprov/runprov/core"
)

// Script returns a batch script: a shebang, j's options as #SBATCH
// directives, then body. sbatch reads a directive's value up to white space
// unless it is in double quotes, and has no escape for a double quote, so a
// value holding one is refused (core.ErrInvalid).
func Script(j Job, body string) (string, error) {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	for _, o := range Options(j) {
		name, value, _ := strings.Cut(o, "=")
		if strings.ContainsAny(value, "\"\n") {
			return "", fmt.Errorf("%w: sbatch option %s: a double quote or newline cannot be passed in a batch script", core.ErrInvalid, o)
		}
		if strings.ContainsAny(value, " \t") {
			value = `"` + value + `"`
		}
		fmt.Fprintf(&b, "#SBATCH %s=%s\n", name, value)
	}
	b.WriteString(body)
	return b.String(), nil
}

// RunBody is the body of the batch script that runs prepared runs: task
// first+i of an array (or the job itself, first = i = 0) runs runIDs[i] with
// `RUNPROV --store STORE exec-prepared RUN`, its output appended to
// STORE/runs/RUN/slurm.out. runprov and the store must be at the same paths
// on the node (a shared file system).
func RunBody(runprov, store string, runIDs []string, first int) string {
	var b strings.Builder
	b.WriteString("# runprov: run a prepared run of the store on this node.\n")
	b.WriteString("set -u\n")
	b.WriteString("case \"${SLURM_ARRAY_TASK_ID:-0}\" in\n")
	for i, id := range runIDs {
		fmt.Fprintf(&b, "%d) run=%s ;;\n", first+i, Quote(id))
	}
	b.WriteString("*) echo \"runprov: array task ${SLURM_ARRAY_TASK_ID} has no run\" >&2; exit 64 ;;\n")
	b.WriteString("esac\n")
	fmt.Fprintf(&b, "exec >>%s/\"$run\"/slurm.out 2>&1\n", Quote(strings.TrimSuffix(store, "/")+"/runs"))
	fmt.Fprintf(&b, "exec %s --store %s exec-prepared \"$run\"\n", Quote(runprov), Quote(store))
	return b.String()
}

// Quote quotes s for a POSIX shell.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
