package main

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	envplugin "github.com/runprov/runprov/plugins/env"
)

var systemKernel = benchmark{
	name: "systemkernel",
	desc: "SystemKernel snapshot (uname, os-release, cpu, memory, kernel config, /proc/sys walk, modules), in process, vs `sysctl -a` reading the same /proc/sys",
	run:  benchSystemKernel,
}

func benchSystemKernel(ctx context.Context, env *benchEnv) error {
	reps := env.reps(30)
	rt := envplugin.RuntimeInfo{Name: "runc", Version: "bench"}
	sysctl, _ := exec.LookPath("sysctl")
	var collect, baseline sample
	var k *envplugin.SystemKernel
	var sysctlErr error
	for range reps {
		d, _ := timeIt(func() error { k = envplugin.CollectSystemKernel(ctx, rt); return nil })
		collect = append(collect, d)
		if sysctl != "" {
			// sysctl(8) walks and reads the same tree: the cost of the
			// walk alone, in a process of its own.
			d, err := timeIt(func() error { _, err := env.cmd(ctx, nil, sysctl, "-a"); return err })
			if err != nil && sysctlErr == nil {
				// sysctl -a exits non-zero on unreadable keys on some hosts; its time still counts
				sysctlErr = err
				fmt.Fprintf(env.out, "  (sysctl -a: %v)\n", err)
			}
			baseline = append(baseline, d)
		}
	}
	fmt.Fprintf(env.out, "  snapshot: %d sysctls, %d kernel config options, %d modules, errors %v\n",
		len(k.Sysctls), len(k.KernelConfig), len(k.Modules), k.Errors)
	env.row("runprov SystemKernel snapshot (in process)", collect)
	if sysctl == "" {
		fmt.Fprintln(env.out, "  sysctl not installed (procps): no baseline")
		return nil
	}
	env.row("sysctl -a (procps, baseline)", baseline)
	env.ratio("snapshot / sysctl -a", collect, baseline)
	if collect.median() > envplugin.SysctlBudget {
		return fmt.Errorf("snapshot median %v exceeds the sysctl budget %v", collect.median().Round(time.Millisecond), envplugin.SysctlBudget)
	}
	return nil
}
