package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/plugins/sbom"
	"github.com/runprov/runprov/runfile"
)

// exitFindings is image check's exit status when a check fails.
const exitFindings = 1

func newImageSBOMCmd(a *app) *cobra.Command {
	var format, platform, out string
	cmd := &cobra.Command{
		Use:   "sbom DIGEST",
		Short: "Write the image's software bill of materials (CycloneDX or SPDX JSON)",
		Long: `Write what is inside the image as a CycloneDX 1.6 JSON (--format
cyclonedx, the default) or SPDX 2.3 JSON (--format spdx) document, offline:
every package found in its unpacked root filesystem (Debian and Ubuntu dpkg,
Alpine apk, RPM rpmdb.sqlite, Python dist-info and egg-info, R packages,
conda), each with its version, package URL and where it was found.

The inventory is taken once per image config when the image is imported or
pulled, or on its first run, and kept in the store (tables
image_inventories and image_packages); an image stored before then is
unpacked and inventoried now. The document depends only on the image:
writing it again gives the same bytes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != sbom.FormatCycloneDX && format != sbom.FormatSPDX {
				return usagef("--format %q: use cyclonedx or spdx", format)
			}
			img, inv, err := imageInventory(cmd.Context(), a, args[0], platform)
			if err != nil {
				return err
			}
			return writeTo(a, out, func(w io.Writer) error {
				return sbom.Write(w, format, sbom.Document{Image: img, Inventory: inv, Tool: version})
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", sbom.FormatCycloneDX, "cyclonedx or spdx")
	cmd.Flags().StringVar(&platform, "platform", "", "for an index: the platform's manifest, os/arch[/variant] (default: this host's)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to `FILE` instead of stdout")
	return cmd
}

// imageInventory resolves an image and returns its inventory, taking it
// when the store has none (only that needs a writable store).
func imageInventory(ctx context.Context, a *app, digest, platform string) (*core.ResolvedImage, *core.Inventory, error) {
	t, err := a.openRead(ctx)
	if err != nil {
		return nil, nil, err
	}
	img, err := t.images.Resolve(ctx, digest, platform)
	if err != nil {
		return nil, nil, err
	}
	if inv := recordPackages(ctx, a, t.store, img.ConfigDigest); inv != nil {
		return img, inv, nil
	}
	if t, err = a.open(ctx); err != nil {
		return nil, nil, err
	}
	inv, err := t.sbom.Inventory(ctx, img, a.progress())
	if err != nil {
		return nil, nil, err
	}
	return img, inv, nil
}

// writeTo calls write with stdout, or with FILE (written whole or not at all).
func writeTo(a *app, file string, write func(io.Writer) error) error {
	if file == "" {
		return write(a.stdout)
	}
	tmp := file + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// inventoryImported takes the inventory of the manifests an import or pull
// stored for this host's platform (the ones that can run here). It is
// worth having, not worth failing the import for: problems are logged.
func inventoryImported(ctx context.Context, a *app, recs []core.ImageRecord) {
	t, err := a.open(ctx)
	if err != nil {
		return
	}
	host := t.images.HostPlatform()
	for _, r := range recs {
		if r.IsIndex() || (r.Platform != "" && r.Platform != host) {
			continue
		}
		img, err := t.images.Resolve(ctx, r.Digest, "")
		if err == nil {
			_, err = t.sbom.Inventory(ctx, img, a.progress())
		}
		if err != nil {
			a.log.Warn("could not take the image's package inventory; runprov image sbom will try again", "image", r.Digest, "err", err)
		}
	}
}

func newImageCheckCmd(a *app) *cobra.Command {
	var (
		platform string
		maxSize  string
	)
	cmd := &cobra.Command{
		Use:   "check DIGEST",
		Short: "Check an image against TRE build guidance",
		Long: `Check the image against TRE build guidance, one finding per check:
  safe_data, safe_outputs, scratch   the directories /safe_data, /safe_outputs, /scratch exist
  user             the image config's USER is not root (nor unset, which is root)
  tmpdir           ENV TMPDIR and TMP point at /scratch
  entrypoint       an ENTRYPOINT or CMD says what the image runs
  setuid           no file has the setuid or setgid bit (runprov drops them when
                   unpacking, other runtimes may not)
  world_writable   no world-writable directory outside /tmp, /var/tmp, /dev/shm, /run/lock
  model_cache      a Hugging Face cache (~/.cache/huggingface, HF_HOME) comes with
                   ENV HF_HUB_OFFLINE=1, as a TRE has no network
  size             the unpacked size is at most --max-size

Exit status: 0 when every check passes, 1 when any fails, 125 on errors.
runprov image approve --check runs these checks before approving.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			limit, err := runfile.ParseSize(maxSize)
			if err != nil {
				return usagef("--max-size %q: %v", maxSize, err)
			}
			rep, err := checkImage(cmd.Context(), a, args[0], platform, limit)
			if err != nil {
				return err
			}
			if a.json {
				err = printJSON(a.stdout, rep)
			} else {
				err = printCheck(a.stdout, rep)
			}
			if err == nil && !rep.Passed {
				return exitStatus{exitFindings}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "for an index: the platform's manifest, os/arch[/variant] (default: this host's)")
	cmd.Flags().StringVar(&maxSize, "max-size", "10G", "largest unpacked `SIZE` that passes (K, M, G suffixes)")
	return cmd
}

func checkImage(ctx context.Context, a *app, digest, platform string, maxSize int64) (*sbom.Report, error) {
	t, err := a.open(ctx)
	if err != nil {
		return nil, err
	}
	img, err := t.images.Resolve(ctx, digest, platform)
	if err != nil {
		return nil, err
	}
	return t.sbom.Check(ctx, img, sbom.CheckOptions{MaxSize: maxSize, Progress: a.progress()})
}

func printCheck(w io.Writer, rep *sbom.Report) error {
	fmt.Fprintf(w, "image %s\n", rep.Image.ManifestDigest)
	for _, f := range rep.Findings {
		mark := "ok  "
		if !f.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %-15s %s\n", mark, f.Check, f.Detail)
	}
	if failed := rep.Failed(); len(failed) > 0 {
		names := make([]string, len(failed))
		for i, f := range failed {
			names[i] = f.Check
		}
		fmt.Fprintf(w, "%d check(s) failed: %s\n", len(failed), strings.Join(names, ", "))
	} else {
		fmt.Fprintln(w, "all checks passed")
	}
	return nil
}

// packagesSummary is "deb 92, pypi 3" for show.
func packagesSummary(inv *core.Inventory) string {
	counts := inv.Counts()
	var parts []string
	for _, eco := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s %d", eco, counts[eco]))
	}
	if len(parts) == 0 {
		return "none found"
	}
	return strings.Join(parts, ", ")
}

// recordPackages is the stored inventory of a run's image config; nil when
// there is none (never taken, or the run has no config digest).
func recordPackages(ctx context.Context, a *app, st interface {
	Inventory(context.Context, string) (*core.Inventory, error)
}, config string) *core.Inventory {
	if config == "" {
		return nil
	}
	inv, err := st.Inventory(ctx, config)
	if err != nil {
		if !errors.Is(err, core.ErrNotFound) {
			a.log.Warn("cannot read the image's package inventory", "config", config, "err", err)
		}
		return nil
	}
	return inv
}

// checkBeforeApproval runs image check for approve --check: the findings go
// to stderr, and any failed check refuses the approval.
func checkBeforeApproval(ctx context.Context, a *app, digest string) error {
	rep, err := checkImage(ctx, a, digest, "", 0)
	if err != nil {
		return err
	}
	printCheck(a.stderr, rep)
	if !rep.Passed {
		return advise(fmt.Errorf("image %s: %w: it fails TRE build guidance, nothing was approved", shortDigest(rep.Image.ManifestDigest), core.ErrInvalid),
			adviceImageFailsGuidance, "")
	}
	return nil
}

// printPackages adds the packages line(s) of show: counts per ecosystem,
// and with verbose every package.
func printPackages(p recordLine, inv *core.Inventory, image string, verbose bool) {
	if inv == nil {
		p("packages", "not inventoried (runprov image sbom %s takes the inventory)", shortDigest(image))
		return
	}
	p("packages", "%d: %s", len(inv.Packages), packagesSummary(inv))
	if !verbose {
		return
	}
	for _, pk := range inv.Packages {
		p("", "%s %s %s  %s", pk.Ecosystem, pk.Name, pk.Version, pk.Location)
	}
}
