#!/bin/sh
# slurm-up.sh: install Debian's slurm-wlm and munge and start a single-node
# Slurm cluster on this machine (munged, slurmctld, slurmd), for runprov's
# tests and for users who want to try `runprov run --executor slurm`.
#
# Idempotent: a cluster that already answers with an idle node is left alone.
# Needs root to install and start daemons; otherwise it says what to run.
# Only loopback is used (NodeAddr=127.0.0.1).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
conf=${SLURM_CONF:-/etc/slurm/slurm.conf}
marker="written by runprov's testdata/slurm/slurm-up.sh"
host=$(hostname -s)

log() { echo "slurm-up: $*" >&2; }

node_ready() {
	# The node answers and is idle, mixed or allocated: jobs can run.
	state=$(sinfo -h -N -n "$host" -o '%T' 2>/dev/null | head -n1) || return 1
	case "$state" in idle | mixed | allocated | completing) return 0 ;; esac
	return 1
}

ours() { [ -f "$conf" ] && grep -q "$marker" "$conf"; }

# A cluster that is not ours (a real site's) and answers: nothing to do.
if command -v sinfo >/dev/null 2>&1 && [ -f "$conf" ] && ! ours && node_ready; then
	exit 0
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
render() {
	# The node as slurmd sees it: CPUs and RealMemory (MiB), less 512 MiB so
	# the node is never refused for having less memory than configured.
	cpus=$(nproc)
	mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
	mem=$((mem > 1024 ? mem - 512 : mem))
	{
		echo "# $marker"
		sed -e "s/@HOST@/$host/g" -e "s/@CPUS@/$cpus/g" -e "s/@MEMORY@/$mem/g" "$here/slurm.conf.in"
	} >"$tmp"
}

# Ours, up to date and answering: nothing to do.
if command -v slurmd >/dev/null 2>&1 && ours; then
	render
	if cmp -s "$tmp" "$conf" && node_ready; then
		exit 0
	fi
fi

if [ "$(id -u)" -ne 0 ]; then
	log "no Slurm cluster answers and starting one needs root"
	log "run: sudo make slurm-up   (or: sudo $0)"
	exit 1
fi

"$here/../scripts/install-deps.sh" slurm-wlm munge

if [ -f "$conf" ] && ! ours; then
	log "$conf exists and was not written by runprov: not touching it"
	log "start your cluster's daemons, or move $conf away and run this again"
	exit 1
fi

render
changed=no
if ! cmp -s "$tmp" "$conf" 2>/dev/null; then
	mkdir -p "$(dirname "$conf")"
	cp "$tmp" "$conf"
	chmod 644 "$conf"
	changed=yes
	log "wrote $conf (NodeName=$host CPUs=$cpus RealMemory=$mem)"
fi

mkdir -p /run/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
chown slurm:slurm /run/slurm /var/lib/slurm/slurmctld /var/log/slurm

alive() { pid=$(cat "$1" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; }
stop() {
	pid=$(cat "$1" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || return 0
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}

# munged runs as the munge user, as Debian's init script does.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
	mkdir -p /run/munge
	chown munge:munge /run/munge
	chmod 755 /run/munge
	log "starting munged"
	runuser -u munge -- /usr/sbin/munged
	i=0
	until munge -n 2>/dev/null | unmunge >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 50 ] && { log "munged does not answer; see /var/log/munge/munged.log"; exit 1; }
		sleep 0.1
	done
fi

if [ "$changed" = yes ]; then
	stop /run/slurm/slurmd.pid
	stop /run/slurm/slurmctld.pid
fi
if ! alive /run/slurm/slurmctld.pid; then
	log "starting slurmctld"
	slurmctld
fi
if ! alive /run/slurm/slurmd.pid; then
	log "starting slurmd"
	slurmd
fi

i=0
until node_ready; do
	i=$((i + 1))
	if [ $i -eq 20 ]; then
		# A node left down or drained by an earlier run of the daemons.
		scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
	fi
	if [ $i -gt 300 ]; then
		log "node $host is not idle after 30s:"
		sinfo -N -l >&2 || true
		tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
		exit 1
	fi
	sleep 0.1
done
log "cluster up: $(sinfo -h -N -o '%N %T %c CPUs %m MiB')"
