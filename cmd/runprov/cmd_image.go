package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	imagedrv "github.com/runprov/runprov/drivers/image"
)

func newImageCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Import, pull, verify, approve and remove container images",
		Long: `Images live in the store as an OCI image layout (STORE/images), named by
sha256 digest; their rows (where each came from, when, and whether it is
approved) are in the store's database, tables images and image_events.

Every blob is verified against its digest while it is copied in; a mismatch
stores nothing. A DIGEST argument may be any unique prefix of a stored digest.

When the store requires approval (runprov init --tre, or
runprov config require-approval true), runprov run refuses images nobody
approved with "runprov image approve".`,
	}
	cmd.AddCommand(
		newImageImportCmd(a), newImagePullCmd(a), newImageLsCmd(a), newImageInspectCmd(a),
		newImageVerifyCmd(a), newImageApproveCmd(a, true), newImageApproveCmd(a, false),
		newImageRmCmd(a), newImageGCCmd(a), newImageUnpackCmd(a), newImageLogCmd(a),
		newImageApprovalsCmd(a), newImageSBOMCmd(a), newImageCheckCmd(a),
	)
	return cmd
}

// images opens the store and returns its image driver.
func (a *app) images(ctx context.Context) (*imagedrv.Store, error) {
	t, err := a.open(ctx)
	if err != nil {
		return nil, err
	}
	return t.images, nil
}

// readImages is images for a command that only reads the store.
func (a *app) readImages(ctx context.Context) (*imagedrv.Store, error) {
	t, err := a.openRead(ctx)
	if err != nil {
		return nil, err
	}
	return t.images, nil
}

// sourceRefused marks a digest mismatch in what was being imported or
// pulled: the source is damaged or tampered with, not the store (so the
// advice is not fsck's).
func sourceRefused(err error) error {
	var mm *core.DigestMismatchError
	if errors.As(err, &mm) {
		return advise(err, adviceSourceDamaged, "")
	}
	return err
}

// printImported prints the rows an import or pull stored: digest, what it
// is (index or platform), reference.
func printImported(a *app, recs []core.ImageRecord) error {
	if a.json {
		return printJSON(a.stdout, nonNil(recs))
	}
	tb := newTable(a, "DIGEST", "PLATFORM", "REF")
	for _, r := range recs {
		what := r.Platform
		if r.IsIndex() {
			what = "index"
		}
		tb.row(r.Digest, what, r.Ref)
	}
	return tb.flush()
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func newImageImportCmd(a *app) *cobra.Command {
	var platform string
	cmd := &cobra.Command{
		Use:   "import PATH",
		Short: "Import images from an OCI layout directory, an OCI archive or a docker archive",
		Long: `Import the images of PATH into the store:
  - an OCI image layout directory (oci-layout, index.json, blobs/),
  - an OCI archive: a tar of such a layout (podman save --format oci-archive,
    skopeo copy ... oci-archive:FILE, docker save of Docker 25 or later),
  - a docker archive (docker save, podman save), optionally gzip-compressed.
Every blob is checked against its digest while it is copied; any mismatch
aborts the import and keeps nothing. A docker archive has no manifest: its
config is checked against the digest in its file name and its layers against
the config's diff ids, and runprov writes the manifest (so its digest is
runprov's, not a registry's).

Prints the digests stored: each index, then its per-platform manifests. Use
either digest in a Runfile's FROM line.`,
		Args: exactArgs("image import", "which image? give an OCI layout directory, an OCI archive or a docker-archive tar"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.images(cmd.Context())
			if err != nil {
				return err
			}
			recs, err := s.Import(cmd.Context(), args[0], imagedrv.ImportOptions{Platform: platform, Progress: a.progress()})
			if err != nil {
				return sourceRefused(err)
			}
			inventoryImported(cmd.Context(), a, recs)
			return printImported(a, recs)
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "import only this platform's manifest of an index, os/arch[/variant] (default: all in the archive)")
	return cmd
}

func newImagePullCmd(a *app) *cobra.Command {
	var (
		insecure bool
		platform string
	)
	cmd := &cobra.Command{
		Use:   "pull NAME[:TAG]@sha256:DIGEST",
		Short: "Pull an image from a registry, by digest",
		Long: `Pull an image from its registry into the store. The reference must carry a
digest, as a Runfile's FROM line does: a tag alone is refused, with the
digest the registry gives for it. When the digest names an index, the
manifest for --platform (default: this host's) is pulled with it. Every blob
is verified while it is copied; a mismatch keeps nothing.

Credentials are read from the docker and podman config files
(docker login, podman login). --insecure allows plain HTTP (test
registries on loopback).`,
		Args: exactArgs("image pull", "which image? give NAME@sha256:DIGEST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.images(cmd.Context())
			if err != nil {
				return err
			}
			recs, err := s.Pull(cmd.Context(), args[0], core.PullOptions{Insecure: insecure, Platform: platform, Progress: a.progress()})
			if err != nil {
				return sourceRefused(err)
			}
			inventoryImported(cmd.Context(), a, recs)
			return printImported(a, recs)
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP to the registry")
	cmd.Flags().StringVar(&platform, "platform", "", "platform to take from an index, os/arch[/variant] (default: this host's)")
	return cmd
}

func newImageLsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the stored images",
		Long: `List the stored images: each index followed by its manifests, with the
platform, reference, size, import time and approval. --json prints every
column of the images table.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.readImages(cmd.Context())
			if err != nil {
				return err
			}
			recs, err := s.List(cmd.Context())
			if err != nil {
				return err
			}
			recs = indexFirst(recs)
			if a.json {
				return printJSON(a.stdout, nonNil(recs))
			}
			tb := newTable(a, "DIGEST", "PLATFORM", "REF", "SIZE", "IMPORTED", "APPROVED")
			for _, r := range recs {
				d, what := shortDigest(r.Digest), r.Platform
				if a.csv {
					d = r.Digest
				}
				if r.IsIndex() {
					what = "index"
				} else if r.IndexDigest != "" && !a.csv {
					d = "  " + d
				}
				size := core.HumanBytes(r.Size)
				if a.csv {
					size = strconv.FormatInt(r.Size, 10)
				}
				approved := "no"
				if r.Approved {
					approved = "yes"
				}
				tb.row(d, what, r.Ref, size, a.when(r.ImportedAt), approved)
			}
			return tb.flush()
		},
	}
}

// indexFirst orders rows as a tree: each image not held by a stored index,
// followed by the manifests stored with it.
func indexFirst(recs []core.ImageRecord) []core.ImageRecord {
	stored := map[string]bool{}
	for _, r := range recs {
		stored[r.Digest] = true
	}
	var out []core.ImageRecord
	for _, r := range recs {
		if r.IndexDigest != "" && stored[r.IndexDigest] {
			continue
		}
		out = append(out, r)
		for _, c := range recs {
			if c.IndexDigest == r.Digest {
				out = append(out, c)
			}
		}
	}
	return out
}

func newImageInspectCmd(a *app) *cobra.Command {
	var platform string
	cmd := &cobra.Command{
		Use:   "inspect DIGEST",
		Short: "Print what a run would use of an image (JSON)",
		Long: `Resolve DIGEST (an index: to the manifest for --platform, default this
host's) and print, as JSON, the digests, platform, reference, approval and
the image config a run starts from (entrypoint, command, environment,
working directory, user, labels).`,
		Args: exactArgs("image inspect", "which image? (runprov image ls lists their digests)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.readImages(cmd.Context())
			if err != nil {
				return err
			}
			res, err := s.Resolve(cmd.Context(), args[0], platform)
			if err != nil {
				return err
			}
			return printJSON(a.stdout, res)
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "platform to resolve an index to, os/arch[/variant]")
	return cmd
}

func newImageVerifyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIGEST",
		Short: "Re-hash every blob of a stored image",
		Long: `Re-hash every blob of the image: the index, its stored manifests, their
configs and layers. A blob that does not hash to its digest is named with the
expected and actual digests, and the exit status is 125.`,
		Args: exactArgs("image verify", "which image? (runprov image ls lists their digests)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.images(cmd.Context())
			if err != nil {
				return err
			}
			d, err := s.Lookup(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := s.Verify(cmd.Context(), d, a.progress()); err != nil {
				return advise(err, adviceStoredImageDamaged, shortDigest(d))
			}
			if a.json {
				return printJSON(a.stdout, map[string]any{"digest": d, "ok": true})
			}
			fmt.Fprintf(a.stderr, "verified %s: every blob matches its digest\n", d)
			return nil
		},
	}
}

func newImageApproveCmd(a *app, approve bool) *cobra.Command {
	var note, key, expires, out string
	var check bool
	use, short := "approve DIGEST", "Approve an image to run in this store"
	long := `Record that the image may run when the store requires approval, with a note
(who reviewed it, a ticket). Approving an index approves every platform of
it; approving a manifest approves that one. The approval, its time, the user
and the note are kept in the images table, and the change in image_events.

With --key the approval is signed: a DSSE envelope of an in-toto statement
(predicate https://runprov.dev/approval/v1) naming the image digest, the
key id, the note, the time and --expires, kept in the store and written to
-o FILE. Under a site policy with approver_keys only such approvals by one
of those keys count; a steward may put the file in the policy's
approvals_dir so that it serves every store.`
	if !approve {
		use, short = "revoke DIGEST", "Withdraw the approval of an image"
		long = `Withdraw the approval of an image, with a note saying why. Runs of it are
refused again when the store requires approval. The change is kept in
image_events. With --key the revocation is signed, like approve --key,
and outranks every earlier signed approval.`
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  exactArgs("image "+use[:len(use)-len(" DIGEST")], "which image? (runprov image ls lists their digests)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.images(cmd.Context())
			if err != nil {
				return err
			}
			if check {
				if err := checkBeforeApproval(cmd.Context(), a, args[0]); err != nil {
					return err
				}
			}
			if key != "" {
				return a.signApproval(cmd.Context(), s, args[0], !approve, key, note, expires, out)
			}
			if expires != "" || out != "" {
				return usagef("--expires and -o need --key: only a signed approval can expire or be written to a file")
			}
			var rec *core.ImageRecord
			if approve {
				rec, err = s.Approve(cmd.Context(), args[0], note)
			} else {
				rec, err = s.Revoke(cmd.Context(), args[0], note)
			}
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, rec)
			}
			verb := "approved"
			if !approve {
				verb = "revoked the approval of"
			}
			fmt.Fprintf(a.stderr, "%s %s\n", verb, rec.Digest)
			if approve && !check {
				fmt.Fprintf(a.stderr, "check it against TRE build guidance with: runprov image check %s\n", shortDigest(rec.Digest))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "why: who reviewed it, a ticket, a reason")
	cmd.Flags().StringVar(&key, "key", "", "sign with this private `KEY` file (runprov key generate)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "also write the signed envelope to `FILE`")
	if approve {
		cmd.Flags().BoolVar(&check, "check", false, "run runprov image check first; approve only when every check passes")
		cmd.Flags().StringVar(&expires, "expires", "", "the signed approval ends on `DATE` (YYYY-MM-DD, or RFC 3339)")
	}
	return cmd
}

func newImageRmCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm DIGEST",
		Short: "Remove an image, its unpacked rootfs and the blobs only it used",
		Long: `Remove the image from the store: its row (an index with its manifests), the
unpacked root filesystems and every blob no other image uses. Its history in
image_events is kept. A manifest stored with an index is removed with the
index. An approved image is refused unless --force: revoke it first, saying
why. So is an image that a queued or running run uses: its root filesystem
is in use. So is an image that recorded runs used, naming them: runprov
reproduce needs it to repeat them. --force removes it anyway and its rm row in
image_events names those runs.`,
		Args: exactArgs("image rm", "which image? (runprov image ls lists their digests)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.images(cmd.Context())
			if err != nil {
				return err
			}
			if !force {
				d, err := s.Lookup(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				busy, err := a.store.UnfinishedRunsOfImage(cmd.Context(), d)
				if err != nil {
					return err
				}
				if len(busy) > 0 {
					return fmt.Errorf("rm %s: the image is in use: %d unfinished run(s) use it, first %s; wait for them (runprov runs --status running) or pass --force",
						shortDigest(d), len(busy), core.ShortRunID(busy[0]))
				}
			}
			removed, err := s.Remove(cmd.Context(), args[0], imagedrv.RemoveOptions{Force: force})
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, map[string]any{"removed": removed})
			}
			for _, d := range removed {
				fmt.Fprintln(a.stdout, d)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove an approved image, or one that runs used or use, too")
	return cmd
}

func newImageGCCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "gc",
		Short: "Remove blobs, rootfs directories and temporary files no image needs",
		Long: `Remove what no stored image needs: blobs left by an interrupted import or
rm, unpacked root filesystems of images that are gone, and temporary
directories of runprov processes that no longer run. It never removes a
stored image (so never one that recorded runs used): only image rm does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.images(cmd.Context())
			if err != nil {
				return err
			}
			st, err := s.GC(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, st)
			}
			fmt.Fprintf(a.stderr, "removed %d blob(s) (%s), %d rootfs director(ies), %d temporary director(ies)\n",
				st.Blobs, core.HumanBytes(st.BlobBytes), st.Rootfs, st.Temp)
			return nil
		},
	}
}

func newImageUnpackCmd(a *app) *cobra.Command {
	var platform string
	cmd := &cobra.Command{
		Use:   "unpack DIGEST",
		Short: "Unpack an image's root filesystem (once) and print its directory",
		Long: `Unpack the layers of the image (an index: its manifest for --platform,
default this host's) into STORE/rootfs/<manifest digest>/ and print that
directory. It is made once: later calls, and runs, reuse it. Files belong to
the user running runprov; setuid/setgid bits, device nodes and file
capabilities are dropped (and logged); a layer that tries to write outside the
rootfs is refused and nothing is kept.`,
		Args: exactArgs("image unpack", "which image? (runprov image ls lists their digests)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.images(cmd.Context())
			if err != nil {
				return err
			}
			res, err := s.Resolve(cmd.Context(), args[0], platform)
			if err != nil {
				return err
			}
			dir, reused, err := s.Unpack(cmd.Context(), res.ManifestDigest, a.progress())
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, map[string]any{"rootfs": dir, "reused": reused, "manifest_digest": res.ManifestDigest})
			}
			if reused {
				a.log.Debug("rootfs already unpacked", "rootfs", dir)
			}
			fmt.Fprintln(a.stdout, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "platform to resolve an index to, os/arch[/variant]")
	return cmd
}

func newImageLogCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "log [DIGEST]",
		Short: "Show what happened to images: imports, pulls, approvals, revocations, removals",
		Long: `List the image_events rows, oldest first: every import, pull, approve, revoke
and rm, with time, user and note. DIGEST limits the list to one image (a prefix
of a stored image, or the full digest of a removed one).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.readImages(cmd.Context())
			if err != nil {
				return err
			}
			digest := ""
			if len(args) == 1 {
				digest = args[0]
			}
			evs, err := s.Events(cmd.Context(), digest)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, nonNil(evs))
			}
			tb := newTable(a, "TIME", "EVENT", "DIGEST", "USER", "NOTE")
			for _, e := range evs {
				d := shortDigest(e.Digest)
				if a.csv {
					d = e.Digest
				}
				tb.row(a.when(e.At), e.Event, d, e.User, e.Note)
			}
			return tb.flush()
		},
	}
}
