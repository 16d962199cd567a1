#!/bin/sh
# slurm-down.sh: stop the daemons slurm-up.sh started (slurmd, slurmctld,
# munged), by their pid files. Job state is kept for the next slurm-up.
set -eu
stop() {
	[ -f "$1" ] || return 0
	pid=$(cat "$1")
	kill -0 "$pid" 2>/dev/null || return 0
	echo "slurm-down: stopping $2 ($pid)" >&2
	kill "$pid"
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}
stop /run/slurm/slurmd.pid slurmd
stop /run/slurm/slurmctld.pid slurmctld
stop /run/munge/munged.pid munged
