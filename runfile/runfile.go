package runfile

import (
	"time"

	"github.com/runprov/runprov/core"
)

// Version is the newest Runfile format version this package reads.
const Version = 2

// Defaults for what a Runfile does not set.
const (
	DefaultUID     = 65534
	DefaultGID     = 65534
	DefaultNetwork = "none"
)

// File is a parsed, validated Runfile.
//
// A File from Parse has ARG references expanded with the ARG defaults; words
// that use an ARG without a default keep their ${NAME} text until Resolve
// supplies a value (see Deferred). A File from Resolve is fully expanded and
// every value in it has been validated.
type File struct {
	Path       string     // the name used in error messages
	From       Image      // the FROM line
	Args       []Arg      // ARG lines, in order
	Env        []KeyValue // ENV pairs, in order; a later key overrides an earlier one
	Labels     []KeyValue
	Workdir    string  // "" when not set: the image config's, else "/"
	User       User    // Default true when no USER line
	Inputs     []Input // empty when the Runfile declares none (see TRELayout)
	Outputs    []Output
	Scratch    []Scratch
	Volumes    []Volume
	Network    string // always "none" in v1
	Limits     Limits
	Entrypoint *Command // nil: the image config's
	Cmd        *Command // nil: the image config's
	Steps      []Step   // RUN lines, in order
	// Devices are the DEVICE lines (format 2), in order.
	Devices []Device `json:",omitempty"`
	// Version is the format version the file declares with
	// "# runprov-format=N"; 0 when it declares none (format 1).
	Version int `json:",omitempty"`
	// Deferred lists the ARG names (without defaults) that some word still
	// refers to, in declaration order; Resolve must be given a value for
	// each. Empty after Resolve.
	Deferred []string
	// Pending holds the lines whose words refer to Deferred ARGs, as written.
	// On those lines string fields keep the words' text (e.g. "${DIR}/in"),
	// sizes and limits stay 0 (unset) and USER stays 65534:65534 until
	// Resolve. Empty after Resolve.
	Pending []RawLine
	// Escape is "`" when the file sets "# escape=`", else "" (backslash).
	Escape string

	instrs []instruction // the parsed lines, kept so Resolve can expand again
}

// Image is the FROM line. While FROM waits for Resolve (see File.Pending),
// Ref holds the text as written and Name, Tag and Digest are empty.
type Image struct {
	Ref      string // as written after expansion: NAME[:TAG]@sha256:HEX
	Name     string // NAME without tag and digest, normalised as docker does: "busybox" is "docker.io/library/busybox"
	Tag      string // "" when absent
	Digest   string // "sha256:<64 lowercase hex>"
	Platform string // from --platform, "" when absent
	Line     int
}

// Arg is an ARG line: a run parameter.
type Arg struct {
	Name       string
	Default    string // expanded; the text as written while it waits for Resolve
	HasDefault bool
	// Value is the value in effect: the --arg value given to Resolve, else
	// Default; "" while it waits for Resolve.
	Value string
	Line  int
}

// KeyValue is one ENV or LABEL pair.
type KeyValue struct {
	Key, Value string
	Line       int
}

// User is the USER line: numeric ids, never 0.
type User struct {
	UID, GID uint32
	Default  bool // no USER line: DefaultUID:DefaultGID
	Line     int
}

// Input is an INPUT line: a DataLocator bound read-only at Target; the host
// path is given at run time with --input NAME=PATH.
type Input struct {
	Name   string
	Target string // absolute, clean
	Line   int
}

// Output is an OUTPUT line: a directory collected and hashed after the run.
type Output struct {
	Target string
	// Sensitivity is SensitivityHigh (the default: its files never leave)
	// or SensitivityModerate (they may be requested for release).
	Sensitivity string
	Line        int
}

// Output sensitivities: OUTPUT PATH sensitivity=high|moderate.
const (
	SensitivityHigh     = core.SensitivityHigh
	SensitivityModerate = core.SensitivityModerate
)

// Scratch is a SCRATCH line: temporary space deleted after the run.
type Scratch struct {
	Target    string
	SizeBytes int64 // 0: no size limit given
	Line      int
}

// Volume is a VOLUME line: a named volume kept in the store across runs.
type Volume struct {
	Name   string
	Target string
	Line   int
}

// Limits is the LIMIT lines merged; zero fields are unset.
type Limits struct {
	CPUs        float64
	MemoryBytes int64
	Pids        int64
	Timeout     time.Duration
	Line        int // the last LIMIT line, 0 when none
}

// Command is an ENTRYPOINT, CMD or RUN: the exec-form argument vector. A
// shell-form line becomes ["/bin/sh", "-c", TEXT] with Shell set. An empty
// exec form (ENTRYPOINT [] or CMD []) clears the image config's value.
type Command struct {
	Args  []string
	Shell bool
	Line  int
}

// RawLine is one instruction as written, continuation lines joined.
type RawLine struct {
	Line int
	Text string
}

// Step is a RUN line.
type Step struct {
	Command
}

// TRELayout is the mount layout a run gets when its Runfile declares no
// INPUT, OUTPUT or SCRATCH: input "data" at /safe_data (and
// /inputs), outputs at /safe_outputs (and /outputs), scratch at /scratch.
var TRELayout = struct {
	InputName     string
	InputTargets  []string
	OutputTargets []string
	ScratchTarget string
}{
	InputName:     "data",
	InputTargets:  []string{"/safe_data", "/inputs"},
	OutputTargets: []string{"/safe_outputs", "/outputs"},
	ScratchTarget: "/scratch",
}
