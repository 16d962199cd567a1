package core

import (
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"
)

// SettingRequireApproval is the store setting ("true" or "false") that makes
// the producer refuse images nobody approved (runprov init --tre sets it).
const SettingRequireApproval = "require-approval"

// Media types of the image manifests runprov stores.
const (
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
)

// IsIndexMediaType reports whether mt names an image index (a list of
// per-platform manifests) rather than one image manifest.
func IsIndexMediaType(mt string) bool { return mt == MediaTypeOCIIndex || mt == MediaTypeDockerList }

// ImageConfig is the part of an OCI image config a run needs.
type ImageConfig struct {
	Env        []string          `json:"env,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
	User       string            `json:"user,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// ResolvedImage is an image in the store, resolved for one platform.
type ResolvedImage struct {
	Ref            string      `json:"ref"`          // reference it was stored under ("" if unknown)
	IndexDigest    string      `json:"index_digest"` // "" when the digest named a manifest
	ManifestDigest string      `json:"manifest_digest"`
	ConfigDigest   string      `json:"config_digest"`
	Platform       string      `json:"platform"` // "linux/amd64"
	Config         ImageConfig `json:"config"`
	// Approved is true when IndexDigest or ManifestDigest is approved
	// (approving an index approves every platform of it).
	Approved     bool   `json:"approved"`
	ApprovalNote string `json:"approval_note,omitempty"`
	// Signed is the signed approval that admitted the image, set by an
	// approval check that requires one.
	Signed *RunApproval `json:"signed_approval,omitempty"`
	Size   int64        `json:"size"` // bytes of the manifest, its config and its layers as stored
}

// PullOptions tune Images.Pull.
type PullOptions struct {
	Insecure bool     // allow plain HTTP (loopback and test registries)
	Platform string   // "os/arch[/variant]" of the manifest to take from an index; "" = the host's
	Progress Progress // nil: none
}

// CheckApproval is the policy itself, for callers that know the setting.
func CheckApproval(required bool, img *ResolvedImage) error {
	if !required || img.Approved {
		return nil
	}
	return &NotApprovedError{Ref: img.Ref, IndexDigest: img.IndexDigest, ManifestDigest: img.ManifestDigest}
}

// NotApprovedError is an image refused because the store requires approval
// and neither its index nor its manifest is approved.
type NotApprovedError struct {
	Ref            string
	IndexDigest    string // "" when the image was named by its manifest
	ManifestDigest string
	Policy         string // the site policy that requires approval; "" when the store does
}

// Digest is the digest to approve: the index when there is one (approving it
// approves every platform), else the manifest.
func (e *NotApprovedError) Digest() string {
	if e.IndexDigest != "" {
		return e.IndexDigest
	}
	return e.ManifestDigest
}

func (e *NotApprovedError) Error() string {
	what := e.ManifestDigest
	if e.IndexDigest != "" {
		what = fmt.Sprintf("%s (manifest %s)", e.IndexDigest, e.ManifestDigest)
	}
	if e.Ref != "" {
		what += " " + e.Ref
	}
	by := fmt.Sprintf("this store requires approval (%s=true)", SettingRequireApproval)
	if e.Policy != "" {
		by = fmt.Sprintf("the site policy %s requires approval (require_approval: true)", e.Policy)
	}
	return fmt.Sprintf("%s: %s, and %s", ErrNotApproved, what, by)
}

// Is lets errors.Is(err, ErrNotApproved) match.
func (e *NotApprovedError) Is(target error) bool { return target == ErrNotApproved }

// ImageNotFoundError is an image, or the manifest of one platform of an
// index, that is not in the store. It matches ErrNotFound; its fields say
// what to import or pull.
type ImageNotFoundError struct {
	Digest   string // as asked: a digest or a prefix
	Platform string // set when an index is stored without this platform's manifest
	Index    string // that index
	// NotPulled: a run did not pull it because the store requires approval,
	// and such a store reaches a registry only when asked to.
	NotPulled bool
}

func (e *ImageNotFoundError) Error() string {
	msg := fmt.Sprintf("image %s: %s in the store", e.Digest, ErrNotFound)
	if e.Index != "" {
		msg = fmt.Sprintf("image %s: manifest %s for %s: %s in the store (the index was stored without this platform)",
			e.Index, e.Digest, e.Platform, ErrNotFound)
	}
	if e.NotPulled {
		msg += "; not pulled: this store requires approval, so runs do not pull images unless asked to"
	}
	return msg
}

// Is lets errors.Is(err, ErrNotFound) match.
func (e *ImageNotFoundError) Is(target error) bool { return target == ErrNotFound }

// ImageUsedError refuses to remove an image that recorded runs used:
// reproducing them needs it. It matches ErrInvalid.
type ImageUsedError struct {
	Digest string   // the image asked to be removed
	Runs   []string // ids of the runs that used it (or a manifest removed with it), oldest first
}

// imageUsedShown caps how many run ids an ImageUsedError names.
const imageUsedShown = 5

func (e *ImageUsedError) Error() string {
	ids := make([]string, 0, imageUsedShown)
	for _, id := range e.Runs[:min(len(e.Runs), imageUsedShown)] {
		ids = append(ids, ShortRunID(id))
	}
	list := strings.Join(ids, ", ")
	if more := len(e.Runs) - len(ids); more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	return fmt.Sprintf("rm %s: %s: %d recorded run(s) used it (%s); runprov reproduce needs the image to repeat them",
		e.Digest, ErrInvalid, len(e.Runs), list)
}

// Is lets errors.Is(err, ErrInvalid) match.
func (e *ImageUsedError) Is(target error) bool { return target == ErrInvalid }

// ImageRecord is one row of the images table: an index or a manifest kept
// in the store.
type ImageRecord struct {
	Digest       string    `json:"digest"`
	MediaType    string    `json:"media_type"`
	Ref          string    `json:"ref"`           // NAME[:TAG][@DIGEST] it came with, "" if none
	Source       string    `json:"source"`        // where it came from: "oci-archive:/path", "registry:NAME@DIGEST", ...
	Platform     string    `json:"platform"`      // manifests: "linux/amd64"; indexes: ""
	ConfigDigest string    `json:"config_digest"` // manifests only
	IndexDigest  string    `json:"index_digest"`  // the index this manifest was stored with, "" if none
	Size         int64     `json:"size"`          // bytes of every blob it holds (an index counts its stored manifests)
	ImportedAt   time.Time `json:"imported_at"`
	Approved     bool      `json:"approved"`
	ApprovalNote string    `json:"approval_note"`
	ApprovedBy   string    `json:"approved_by,omitempty"`
	ApprovedAt   time.Time `json:"approved_at,omitzero"`
}

// IsIndex reports whether the row is an image index.
func (r ImageRecord) IsIndex() bool { return IsIndexMediaType(r.MediaType) }

// Image event kinds, the event column of image_events.
const (
	ImageEventImport  = "import"
	ImageEventPull    = "pull"
	ImageEventApprove = "approve"
	ImageEventRevoke  = "revoke"
	ImageEventRemove  = "rm"
)

// ImageEvent is one row of image_events: something that happened to an image.
type ImageEvent struct {
	ID     int64     `json:"id"`
	Digest string    `json:"digest"`
	Event  string    `json:"event"` // ImageEvent*
	At     time.Time `json:"at"`
	User   string    `json:"user"` // login name of who did it
	UID    int       `json:"uid"`
	Note   string    `json:"note"` // --note, or the source of an import or pull
}

// NewImageEvent is an image event of kind by the user running this process.
func NewImageEvent(kind, note string) ImageEvent {
	name := fmt.Sprintf("uid %d", os.Getuid())
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return ImageEvent{Event: kind, User: name, UID: os.Getuid(), Note: note}
}

// ImageApprovedError: an approved image is kept from removal until its
// approval is revoked (or removal is forced). Err says so and matches
// ErrInvalid.
type ImageApprovedError struct {
	Digest string
	Err    error
}

func (e *ImageApprovedError) Error() string { return e.Err.Error() }
func (e *ImageApprovedError) Unwrap() error { return e.Err }
