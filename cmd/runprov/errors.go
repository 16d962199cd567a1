package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/policy"
	"github.com/runprov/runprov/plugins/producer"
	slurmplug "github.com/runprov/runprov/plugins/slurm"
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

// advice names what a command tells the user to do about an error it
// found; adviceText words it. The wording lives here, not at the call.
type advice int

const (
	adviceNone                 advice = iota
	adviceKeyPassphrase               // a private key that needs RUNPROV_KEY_PASSPHRASE
	adviceKeyIDPassphrase             // key id of an encrypted private key
	adviceSignKeyFile                 // --sign-key / --key is not a private key
	adviceVerifyKeyPassphrase         // verify --key named an encrypted private key
	adviceVerifyKeyFile               // verify --key is not a public key
	adviceSiteKeyUnreadable           // verify without --key: the site key cannot be read
	adviceSignedRecordsNoKey          // require_signed_records and no key
	adviceSignedRecordsSiteKey        // require_signed_records and the site key cannot sign
	adviceRecordUnsigned              // the run finished, signing failed
	adviceNotSigned                   // export --signed of an unsigned run
	adviceNoSiteSignKey               // fsck --sign-head without sign_key
	advicePolicyFile                  // the policy file is wrong
	advicePolicyUnsafe                // the policy file could be changed by others
	adviceStoreReadOnly               // a write to a store this user cannot write
	adviceTraceFile                   // trace of a file that cannot be opened
	adviceTraceDir                    // trace of a directory (arg: it)
	adviceNoRunsToReport              // report found no runs
	adviceSourceDamaged               // import or pull of a blob that does not match its digest
	adviceStoredImageDamaged          // image verify failed (arg: digest)
	adviceImageFailsGuidance          // approve --check of an image that fails image check
	adviceNoReleaseSpool              // release commands without a spool in the policy
	adviceExportExists                // export -o of a file that exists
	adviceFsckRepair                  // fsck found damage --repair can rebuild
)

// advisedError is err with the advice for it; arg is what the advice names
// (a path, a digest).
type advisedError struct {
	err    error
	advice advice
	arg    string
}

func (e advisedError) Error() string { return e.err.Error() }
func (e advisedError) Unwrap() error { return e.err }

func advise(err error, a advice, arg string) error { return advisedError{err, a, arg} }

// adviceText words a for the user.
func adviceText(a advice, arg string) string {
	orUnsetPolicy := ""
	if os.Getenv(policy.Env) != "" {
		orUnsetPolicy = " (or unset " + policy.Env + ")"
	}
	switch a {
	case adviceKeyPassphrase:
		return "set " + keyPassphraseEnv + " to the key's passphrase"
	case adviceKeyIDPassphrase:
		return "set " + keyPassphraseEnv + " to the key's passphrase, or use its public key file"
	case adviceSignKeyFile:
		return "give a private key file that runprov key generate wrote (PREFIX.key)"
	case adviceVerifyKeyPassphrase:
		return "give the public key file (PREFIX.pub), or set " + keyPassphraseEnv
	case adviceVerifyKeyFile:
		return "give the signer's public key file (PREFIX.pub from runprov key generate)"
	case adviceSiteKeyUnreadable:
		return "give the site's public key with --key PUB"
	case adviceSignedRecordsNoKey:
		return "sign it with your own key: runprov run ... --sign-key KEY (make one with: runprov key generate --out PREFIX)"
	case adviceSignedRecordsSiteKey:
		return "runs signed by the site key are made as root or by the site's service; or sign with your own key: --sign-key KEY"
	case adviceRecordUnsigned:
		return "the record is kept; runprov verify RUN says it is not signed"
	case adviceNotSigned:
		return "runs are signed when they run with --sign-key KEY or under a site policy's sign_key"
	case adviceNoSiteSignKey:
		return "an administrator must set sign_key in the site policy (runprov policy show)"
	case advicePolicyFile:
		return "an administrator must correct the policy file" + orUnsetPolicy
	case advicePolicyUnsafe:
		return "only root may be able to change a site policy: the file and every directory above it must be owned by root and not writable by group or others; an administrator must fix that" + orUnsetPolicy
	case adviceStoreReadOnly:
		return "log, runs, show, diff, trace, report, query, export, cat, config and image ls/log/inspect read it as it is; to change it, use a writable copy or ask its owner"
	case adviceTraceFile:
		return "name a file, or its digest as sha256:HEX"
	case adviceTraceDir:
		return "trace one file in it, e.g. runprov trace " + arg + "/FILE"
	case adviceNoRunsToReport:
		return "see runprov runs; name runs or widen --since"
	case adviceSourceDamaged:
		return "nothing was stored; the source is damaged or was tampered with: get it again from whoever published it"
	case adviceExportExists:
		return "name a new file, or pass --force to overwrite it"
	case adviceNoReleaseSpool:
		return "an administrator names the release spool with release_dir and the output checkers' keys with output_checker_keys in /etc/runprov/policy.json (see docs/release.md)"
	case adviceImageFailsGuidance:
		return "fix the image, or approve without --check, noting why"
	case adviceStoredImageDamaged:
		return "remove the image (runprov image rm " + arg + " --force) and import or pull it again"
	}
	return ""
}

// hintFor is the one hint printed after err, or "": the advice the command
// chose, else hint's. A hint to run the command that just failed (ran is
// its path, e.g. "runprov fsck") is left out: it would only send the user
// round in a circle.
func hintFor(err error, ran string) string {
	var ae advisedError
	if errors.As(err, &ae) {
		return adviceText(ae.advice, ae.arg)
	}
	text, runs := hint(err)
	if runs != "" && runs == ran {
		return ""
	}
	return text
}

// nameHint says where names of the kind are listed.
func nameHint(e *core.NameError) string {
	switch e.Kind {
	case core.NameRun:
		return "see runprov runs"
	case core.NameCommit:
		return "see runprov log"
	case core.NameRepo:
		return "runprov add or pull creates a repo and its commits; see runprov log"
	case core.NameImage:
		return "see runprov image ls"
	}
	return ""
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
		notPrepared  *slurmplug.NotPreparedError
		notRecorded  *slurmplug.JobNotRecordedError
		used         *core.ImageUsedError
		approvedImg  *core.ImageApprovedError
		name         *core.NameError
		notApproved  *core.NotApprovedError
		verify       *producer.ImageVerifyError
	)
	switch {
	case errors.As(err, &notFound):
		return imageNotFoundHint(notFound), ""
	case errors.As(err, &inputsChange):
		return "restore the original inputs, or pass --allow-changed-inputs to run on them as they are now (the verdict will say so)", ""
	case errors.As(err, &inputsGone):
		return fmt.Sprintf("restore it, or give where it is now: runprov reproduce %s --input %s=PATH", core.ShortRunID(inputsGone.Run), inputsGone.Input), ""
	case errors.As(err, &name):
		return nameHint(name), ""
	case errors.As(err, &notApproved):
		return "someone entitled to approve software for this store (the TRE's software or data steward) must review it and run: runprov image approve " + notApproved.Digest() + " --note \"...\"", ""
	case errors.As(err, &approvedImg):
		return "runprov image revoke " + shortDigest(approvedImg.Digest) + " --note \"...\" withdraws the approval, saying why", ""
	case errors.As(err, &used):
		return "keep it while those runs may need reproducing; or remove it anyway with: runprov image rm --force " + shortDigest(used.Digest) + " (image log records the runs)", ""
	case errors.As(err, &verify):
		return "the stored image no longer matches its digest: remove it (runprov image rm --force DIGEST) and import or pull it again; runprov fsck checks the rest of the store", ""
	case errors.As(err, new(*core.ApprovalError)):
		return approvalHint(err), ""
	case errors.As(err, &notPrepared):
		return "is the store on a file system this node shares?", ""
	case errors.As(err, &notRecorded):
		return "the job runs; runprov show " + notRecorded.RunID + " will have it once it ends", ""
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
	case errors.Is(err, core.ErrReleaseRefused):
		return "the release rules are the site policy's: runprov policy show; docs/release.md says how output checking works", ""
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
