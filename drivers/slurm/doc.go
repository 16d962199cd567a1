// Package slurm is the Slurm driver: it submits batch jobs with sbatch, maps
// a run's limits to sbatch options, writes the batch script that runs a
// prepared run on the allocated node, and reads what the scheduler knows of
// a job from squeue, sacct (the accounting database, or the job completion
// log when there is none) and scontrol.
//
// It talks to Slurm only through its client commands, as a user would, so it
// works with any Slurm a site runs and needs no library or credentials of its
// own. It does not run containers and never touches the store's database:
// plugins/slurm turns what it reports into run records.
package slurm
