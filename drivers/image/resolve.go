package image

import (
	"context"
	"errors"
	"fmt"

	"github.com/runprov/runprov/core"
)

// Resolve finds digest (an index or a manifest) in the store and picks
// the manifest for platform ("" = the host's). Errors: an
// *core.ImageNotFoundError (matches ErrNotFound) when the image, or the
// manifest of that platform, is not stored; ErrInvalid when the index has
// no manifest for the platform or a manifest is for another platform.
func (s *Store) Resolve(ctx context.Context, digest, platform string) (*core.ResolvedImage, error) {
	d, err := s.Lookup(ctx, digest)
	if err != nil {
		return nil, err
	}
	want := s.host
	if platform != "" {
		if want, err = parsePlatform(platform); err != nil {
			return nil, err
		}
	}
	rec, err := s.rec.ImageRecord(ctx, d)
	if err != nil {
		return nil, err
	}
	res := &core.ResolvedImage{Ref: rec.Ref}
	man := rec
	if rec.IsIndex() {
		data, err := s.readBlob(d, "index", maxManifestSize)
		if err != nil {
			return nil, err
		}
		idx, err := parseIndex(data, d)
		if err != nil {
			return nil, err
		}
		m, err := pickManifest(idx, d, want, nil)
		if err != nil {
			return nil, err
		}
		man, err = s.rec.ImageRecord(ctx, m.Digest.String())
		if errors.Is(err, core.ErrNotFound) {
			return nil, &core.ImageNotFoundError{Digest: m.Digest.String(), Platform: platformString(*m.Platform), Index: d}
		}
		if err != nil {
			return nil, err
		}
		res.IndexDigest = d
		res.Approved, res.ApprovalNote = rec.Approved, rec.ApprovalNote
	}
	data, err := s.readBlob(man.Digest, "manifest", maxManifestSize)
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(data, man.Digest)
	if err != nil {
		return nil, err
	}
	cfgData, err := s.readBlob(m.Config.Digest.String(), "config", maxConfigSize)
	if err != nil {
		return nil, err
	}
	cf, err := parseConfig(cfgData, m.Config.Digest.String())
	if err != nil {
		return nil, err
	}
	have := configPlatform(cf)
	if !platformMatches(want, have) {
		return nil, fmt.Errorf("image %s: %w: it is for %s, not %s", man.Digest, core.ErrInvalid, platformString(have), platformString(want))
	}
	if res.Ref == "" {
		res.Ref = man.Ref
	}
	res.ManifestDigest = man.Digest
	res.ConfigDigest = m.Config.Digest.String()
	res.Platform = platformString(have)
	res.Config = imageConfig(cf)
	res.Size = man.Size
	if man.Approved {
		res.Approved, res.ApprovalNote = true, man.ApprovalNote
	}
	return res, nil
}

// ApprovalRequired reports the store's require-approval setting.
func (s *Store) ApprovalRequired(ctx context.Context) (bool, error) {
	v, _, err := s.rec.Setting(ctx, core.SettingRequireApproval)
	return v == "true", err
}

// CheckApproval returns nil when img may run: the store does not require
// approval (SettingRequireApproval), or img is approved; otherwise a
// *core.NotApprovedError (matches ErrNotApproved).
func (s *Store) CheckApproval(ctx context.Context, img *core.ResolvedImage) error {
	required, err := s.ApprovalRequired(ctx)
	if err != nil {
		return fmt.Errorf("read the approval policy: %w", err)
	}
	return core.CheckApproval(required, img)
}
