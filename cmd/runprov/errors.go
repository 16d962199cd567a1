package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/producer"
)

// Exit codes: runprov's own failures are 125, usage errors 2;
// run and reproduce pass the container's status through.
const (
	exitOK      = 0
	exitUsage   = 2
	exitRunprov = 125
)

// usageError is a mistake in how runprov was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitStatus makes runprov exit with code without printing anything more:
// the container's own status, or "differs" from diff.
type exitStatus struct{ code int }

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode chooses the process exit code for err.
func exitCode(err error) int {
	var es exitStatus
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &es):
		return es.code
	case errors.As(err, &ue), isCobraUsage(err):
		return exitUsage
	}
	return exitRunprov
}

// isCobraUsage recognises the errors cobra makes for unknown commands, which
// it does not type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown shorthand flag") ||
		strings.HasPrefix(msg, "unknown flag") || strings.HasPrefix(msg, "invalid argument") ||
		strings.HasPrefix(msg, "accepts ") || strings.HasPrefix(msg, "requires at least") || strings.HasPrefix(msg, "flag needs an argument")
}

// hintedError carries the hint a command chose for err; execute prints it,
// instead of any hint err itself would get, after the error.
type hintedError struct {
	err  error
	hint string
}

func (e hintedError) Error() string { return e.err.Error() }
func (e hintedError) Unwrap() error { return e.err }

// opaqueError hides what err wraps from errors.Is and errors.As, so that
// the hint of a wrapped sentinel is not given.
type opaqueError struct{ err error }

func (e opaqueError) Error() string { return e.err.Error() }

// hintFor is the one hint printed after err, or "": the hint of the
// outermost hintedError (the command chose it), else hint's. A hint to run
// the command that just failed (ran is its path, e.g. "runprov fsck") is left
// out: it would only send the user round in a circle.
func hintFor(err error, ran string) string {
	var he hintedError
	if errors.As(err, &he) {
		return he.hint
	}
	text, runs := hint(err)
	if runs != "" && runs == ran {
		return ""
	}
	return text
}

// approvalHint says what to do about an image a signed-approval policy refused.
func approvalHint(err error) string {
	var ae *core.ApprovalError
	if !errors.As(err, &ae) {
		return ""
	}
	fix := "a data steward holding a key of the policy's approver_keys must review the image and run: runprov image approve " + ae.Digest + " --key KEY --note \"...\" (or put the approval envelope in the policy's approvals_dir)"
	switch ae.Reason {
	case core.ApprovalRevoked:
		return "the approval was withdrawn on purpose; ask the data steward who revoked it. Once re-reviewed, " + fix
	case core.ApprovalUntrusted:
		return "approvals by your own key do not count here; " + fix
	}
	return fix
}

// hint says what to do next for well-known failures, and which runprov
// command that advice runs ("" when it names none or several); text is ""
// when there is nothing useful to add.
func hint(err error) (text, runs string) {
	var (
		notFound     *core.ImageNotFoundError
		inputsGone   *producer.InputGoneError
		inputsChange *producer.InputsChangedError
		runfileGone  *producer.RunfileGoneError
	)
	switch {
	case errors.As(err, &notFound):
		return imageNotFoundHint(notFound), ""
	case errors.As(err, &inputsChange):
		return "restore the original inputs, or pass --allow-changed-inputs to run on them as they are now (the verdict will say so)", ""
	case errors.As(err, &inputsGone):
		return fmt.Sprintf("restore it, or give where it is now: runprov reproduce %s --input %s=PATH", core.ShortRunID(inputsGone.Run), inputsGone.Input), ""
	case errors.As(err, &runfileGone):
		return "pull the repository (runprov pull) first", "runprov pull"
	}
	switch {
	case errors.Is(err, core.ErrNoStore):
		return "create one with: runprov init   (or point --store / RUNPROV_STORE at an existing store)", "runprov init"
	case errors.Is(err, core.ErrBusy):
		return "nothing was changed; run the command again", ""
	case errors.Is(err, core.ErrCorrupt):
		return "run: runprov fsck", "runprov fsck"
	case errors.Is(err, core.ErrNonFastForward):
		return "pull first: runprov pull URL (or push --force to overwrite the remote branch)", "runprov pull"
	case errors.Is(err, core.ErrDiverged):
		return "the histories diverged: runprov only fast-forwards; pull into a new repo with --repo NAME, or reconcile with git and push", ""
	}
	return "", ""
}

// imageNotFoundHint says how to get an image that is not in the store.
func imageNotFoundHint(e *core.ImageNotFoundError) string {
	if e.NotPulled {
		return fmt.Sprintf("import it with: runprov image import PATH   or pull it explicitly: runprov run --pull missing, or runprov image pull NAME@%s", e.Digest)
	}
	if e.Index != "" {
		return fmt.Sprintf("pull it with: runprov image pull NAME@%s --platform %s   (or import an archive that holds it)", e.Index, e.Platform)
	}
	return fmt.Sprintf("import it with: runprov image import PATH   or pull it with: runprov image pull NAME@%s", e.Digest)
}

// runExit is the exit status runprov run, reproduce and exec-prepared give
// for a finished run: 0 when it succeeded, the container's status when it
// exited non-zero, 128+N when signal N ended it, else 125.
func runExit(r *core.Run) int {
	switch {
	case r.Status == core.RunSucceeded:
		return 0
	case r.Status == core.RunAborted:
		if sig := producer.AbortSignal(r.Reason); sig > 0 {
			return 128 + sig
		}
		return exitRunprov
	case r.ExitCode != nil && *r.ExitCode != 0:
		return *r.ExitCode
	}
	return exitRunprov
}

// runExitError is runExit as the error a command returns: nil for 0.
func runExitError(r *core.Run) error {
	if code := runExit(r); code != 0 {
		return exitStatus{code}
	}
	return nil
}

// exactArgs is cobra.ExactArgs(1) with a message that says, in words, what
// is missing: "show: which run? (runprov runs lists them)".
func exactArgs(name, missing string) cobra.PositionalArgs { return nArgs(1, name, missing) }

// nArgs is cobra.ExactArgs(n) worded as exactArgs is.
func nArgs(n int, name, missing string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return usagef("%s: %s", name, missing)
		case len(args) > n && n == 1:
			return usagef("%s takes one argument, not %d: %s", name, len(args), strings.Join(args, " "))
		case len(args) > n:
			return usagef("%s takes %d arguments, not %d: %s", name, n, len(args), strings.Join(args, " "))
		}
		return nil
	}
}
