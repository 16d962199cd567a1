package core

import (
	"time"
)

// RunStatus is where a run is in its lifecycle:
// queued (Slurm only) → running → succeeded | failed | aborted.
type RunStatus string

const (
	RunQueued    RunStatus = "queued"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	RunAborted   RunStatus = "aborted"
)

// Finished reports whether the status is final.
func (s RunStatus) Finished() bool {
	return s == RunSucceeded || s == RunFailed || s == RunAborted
}

// Mount kinds of a run.
const (
	MountInput   = "input"
	MountOutput  = "output"
	MountScratch = "scratch"
	MountVolume  = "volume"
	MountTmp     = "tmp"
)

// RunMount is one bind or tmpfs the sandbox had.
type RunMount struct {
	Kind     string `json:"kind"`           // MountInput, MountOutput, ...
	Name     string `json:"name,omitempty"` // INPUT/VOLUME name
	Source   string `json:"source"`         // host path ("" for tmpfs)
	Target   string `json:"target"`         // container path
	ReadOnly bool   `json:"read_only"`
	Size     int64  `json:"size,omitempty"` // SCRATCH size in bytes, 0: unlimited
	// Sensitivity of an OUTPUT: high or moderate; "" (the TRE layout's
	// outputs, runs made before it was recorded) is high.
	Sensitivity string `json:"sensitivity,omitempty"`
}

// RunLimits are the Runfile's LIMITs as the run applied them.
type RunLimits struct {
	CPUs        float64       `json:"cpus,omitempty"`
	MemoryBytes int64         `json:"memory_bytes,omitempty"`
	Pids        int64         `json:"pids,omitempty"`
	Timeout     time.Duration `json:"timeout,omitempty"`
	// Note says which limits the host could not apply and why; "" when all held.
	Note string `json:"note,omitempty"`
}

// RunStep is one process the run started: a RUN step or the main command.
type RunStep struct {
	Index    int       `json:"index"`
	Argv     []string  `json:"argv"`
	ExitCode int       `json:"exit_code"` // -1 when it never ended (killed, aborted)
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
}

// FileRecord is one file of an input or output manifest.
type FileRecord struct {
	Name   string `json:"name"`             // INPUT name, or the OUTPUT's container path
	Path   string `json:"path"`             // slash path relative to the input/output root
	Size   int64  `json:"size"`             // bytes; 0 for links
	SHA256 string `json:"sha256,omitempty"` // hex; "" for links
	Link   string `json:"link,omitempty"`   // symlink target, not followed
	// Sensitivity of an output file: "high" (never leaves) or "moderate"
	// (may be requested for release), from its OUTPUT line; "" for inputs.
	Sensitivity string `json:"sensitivity,omitempty"`
	// CachedAt is set on an input file whose sha256 came from the input
	// cache (its fingerprint had not changed): when the file was last
	// read in full. Zero when the run hashed it.
	CachedAt time.Time `json:"cached_at,omitzero"`
}

// FileSensitivity is f's sensitivity, high when none was recorded (runs
// made before sensitivities were recorded, and inputs).
func (f FileRecord) FileSensitivity() string {
	if f.Sensitivity == "" {
		return SensitivityHigh
	}
	return f.Sensitivity
}

// Output sensitivities, as a Runfile's OUTPUT line gives them.
const (
	SensitivityHigh     = "high"
	SensitivityModerate = "moderate"
)

// SlurmJob is where a run went when its executor was Slurm.
type SlurmJob struct {
	JobID     string `json:"job_id"`
	ArrayTask *int   `json:"array_task,omitempty"`
	Node      string `json:"node,omitempty"`
	Partition string `json:"partition,omitempty"`
}

// Run is everything recorded of one run.
type Run struct {
	ID string `json:"id"` // 32 lowercase hex; any unique prefix names it

	Repo        string `json:"repo"`
	Path        string `json:"path"`
	Commit      string `json:"commit"`
	RunfileBlob string `json:"runfile_blob"` // git blob id of the Runfile

	ImageRef     string `json:"image_ref"`
	ImageDigest  string `json:"image_digest"`           // manifest digest, "sha256:..."
	IndexDigest  string `json:"index_digest,omitempty"` // when FROM named an index
	ConfigDigest string `json:"config_digest"`
	Approved     bool   `json:"approved"`
	// Approval is the signed approval the run relied on (site policy
	// approver_keys); nil when none was required.
	Approval *RunApproval `json:"approval,omitempty"`

	Args    map[string]string `json:"args"`   // resolved ARG values
	Env     []string          `json:"env"`    // KEY=VALUE as given to the process
	Labels  map[string]string `json:"labels"` // Runfile LABELs
	Argv    []string          `json:"argv"`   // entrypoint + command as run
	User    string            `json:"user"`   // "UID:GID" inside the container
	Workdir string            `json:"workdir"`
	Mounts  []RunMount        `json:"mounts"`
	Limits  RunLimits         `json:"limits"`
	// Devices are the CDI devices (DEVICE, run --device) and CDISpecs the
	// spec files that defined them.
	Devices  []string  `json:"devices,omitempty"`
	CDISpecs []CDISpec `json:"cdi_specs,omitempty"`

	Runtime        string `json:"runtime"` // "runc", "ch-run"
	RuntimeVersion string `json:"runtime_version"`
	// WeakerSandbox is set when the user allowed a runtime that cannot give
	// every guarantee (--allow-weaker-sandbox).
	WeakerSandbox bool `json:"weaker_sandbox"`

	Executor string    `json:"executor"` // "local", "slurm"
	Slurm    *SlurmJob `json:"slurm,omitempty"`

	Hostname           string `json:"hostname"`
	EnvironmentSHA256  string `json:"environment_sha256"`   // row of environments
	SystemKernelSHA256 string `json:"system_kernel_sha256"` // row of system_kernels
	Drift              string `json:"drift,omitempty"`      // summary vs the commit's previous run

	Status   RunStatus `json:"status"`
	ExitCode *int      `json:"exit_code,omitempty"` // the container's; nil when none
	Reason   string    `json:"reason,omitempty"`    // why it failed or aborted: "timeout", "SIGINT", an error

	Created time.Time `json:"created"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`

	Steps   []RunStep    `json:"steps"`
	Inputs  []FileRecord `json:"inputs"`
	Outputs []FileRecord `json:"outputs"`
	// InputsCached counts the input files whose sha256 came from the
	// input cache; every input file was read in full at InputsHashedAt or
	// later (zero when this run read them all). Both are derived from
	// Inputs (InputsCacheSummary).
	InputsCached   int       `json:"inputs_cached"`
	InputsHashedAt time.Time `json:"inputs_hashed_at,omitzero"`

	// ReproduceOf is the run this one reproduces; Verdict is what the
	// comparison of outputs found ("" until known).
	ReproduceOf string `json:"reproduce_of,omitempty"`
	Verdict     string `json:"verdict,omitempty"`

	// Note is what run --note said of the run; Tags are the names runprov
	// tag gave it, sorted. Both are kept beside the record, not in it.
	Note string   `json:"note,omitempty"`
	Tags []string `json:"tags,omitempty"`
}

// ShortRunID is the id as listings print it.
func ShortRunID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// RunFilter selects runs for listings. Zero values select all.
type RunFilter struct {
	Status      RunStatus
	Commit      string // hash prefix
	ImageDigest string // digest prefix, with or without "sha256:"
	Repo        string
	Tag         string // runs with this tag
	Since       time.Time
	Limit       int
}

// MarkSensitivity sets each output file's Sensitivity from its OUTPUT
// mount: the mount records it (in the hash chain, with the run), the file
// rows do not. A mount without one leaves it "" (high).
func (r *Run) MarkSensitivity() {
	sens := map[string]string{}
	for _, m := range r.Mounts {
		if m.Kind == MountOutput {
			sens[m.Target] = m.Sensitivity
		}
	}
	for i := range r.Outputs {
		r.Outputs[i].Sensitivity = sens[r.Outputs[i].Name]
	}
}
