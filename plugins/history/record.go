package history

import (
	"time"

	"github.com/runprov/runprov/core"
)

// Record is one run with what it points to in other tables: the form of
// `show --json` and `export --format json`.
type Record struct {
	core.Run
	// SystemKernel is the full snapshot of the system_kernels row.
	SystemKernel *core.SystemKernel `json:"system_kernel,omitempty"`
	// Environment is the environments row: who ran, where.
	Environment *core.Environment `json:"environment,omitempty"`
	// Signature says which key signed the record; nil when unsigned.
	Signature *core.RunSignature `json:"signature,omitempty"`
	// Packages is the inventory of the run's image (by config digest); nil
	// when the image was never inventoried.
	Packages *core.Inventory `json:"packages,omitempty"`
}

// Duration is how long the run took from start to end; 0 when unknown.
func Duration(r *core.Run) time.Duration {
	if r.Started.IsZero() || r.Ended.IsZero() {
		return 0
	}
	return r.Ended.Sub(r.Started)
}
