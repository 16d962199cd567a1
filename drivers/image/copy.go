package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/runprov/runprov/core"
)

// source is where an import or a pull reads blobs from.
type source interface {
	// open returns the bytes of blob d, unverified (the copier verifies).
	// manifest is set for indexes and manifests, which registries serve
	// from another endpoint. Offline sources return an error wrapping
	// errBlobMissing for a blob they do not hold.
	open(ctx context.Context, d v1.Descriptor, manifest bool) (io.ReadCloser, error)
	// has reports whether the source holds blob d (registries: true).
	has(d v1.Descriptor) bool
}

// copier walks an image graph (index → manifests → config + layers) from a
// source into a stage. Manifests and configs are fetched first (they are
// small and say what else is needed); layers are queued and copied last,
// with progress over their total size.
type copier struct {
	s        *Store
	st       *stage
	src      source
	srcName  string       // for messages: "oci-archive /x.tar", "registry example.org/x"
	source   string       // the Source column
	platform *v1.Platform // nil: every platform the source holds
	// strict: a manifest for another platform is an error, not skipped.
	strict bool

	recs    []core.ImageRecord
	done    map[string]bool
	queued  map[string]bool
	pending []pendingBlob
}

type pendingBlob struct {
	desc v1.Descriptor
	what string
}

// errOtherPlatform marks a manifest skipped because of --platform.
var errOtherPlatform = errors.New("manifest for another platform")

func (s *Store) newCopier(st *stage, src source, srcName, sourceCol string, platform *v1.Platform) *copier {
	return &copier{s: s, st: st, src: src, srcName: srcName, source: sourceCol, platform: platform,
		done: map[string]bool{}, queued: map[string]bool{}}
}

// root copies the image d (an index or a manifest) found under ref.
func (c *copier) root(ctx context.Context, d v1.Descriptor, ref string) error {
	dig := d.Digest.String()
	if c.done[dig] {
		return nil
	}
	c.done[dig] = true
	data, mt, err := c.manifestBlob(ctx, d, "image index or manifest")
	if err != nil {
		return err
	}
	if !core.IsIndexMediaType(mt) {
		rec, err := c.manifest(ctx, d, data, mt, ref, "")
		if err != nil {
			return err
		}
		c.recs = append(c.recs, rec)
		return nil
	}
	idx, err := parseIndex(data, dig)
	if err != nil {
		return err
	}
	var children []v1.Descriptor
	if c.platform != nil {
		m, err := pickManifest(idx, dig, *c.platform, nil)
		if err != nil {
			if !c.strict {
				return errOtherPlatform
			}
			return err
		}
		if !c.src.has(m) {
			return fmt.Errorf("index %s: %w: its manifest %s for %s is not in %s", dig, core.ErrInvalid, m.Digest, platformString(*m.Platform), c.srcName)
		}
		children = append(children, m)
	} else {
		for _, m := range idx.Manifests {
			switch {
			case isAttestation(m):
				continue
			case core.IsIndexMediaType(string(m.MediaType)):
				c.s.log.Info("skipped a nested index", "index", dig, "child", m.Digest.String())
				continue
			case !c.src.has(m):
				plat := "unknown platform"
				if m.Platform != nil {
					plat = platformString(*m.Platform)
				}
				c.s.log.Info("manifest not in the source, skipped", "index", dig, "manifest", m.Digest.String(), "platform", plat)
				continue
			}
			children = append(children, m)
		}
	}
	if len(children) == 0 {
		return fmt.Errorf("index %s: %w: none of its image manifests is in %s", dig, core.ErrInvalid, c.srcName)
	}
	at := len(c.recs)
	c.recs = append(c.recs, core.ImageRecord{Digest: dig, MediaType: mt, Ref: ref, Source: c.source, Size: int64(len(data))})
	for _, m := range children {
		if c.done[m.Digest.String()] { // also listed on its own, or by another index of this import
			continue
		}
		c.done[m.Digest.String()] = true
		mdata, mmt, err := c.manifestBlob(ctx, m, "manifest")
		if err != nil {
			return err
		}
		if core.IsIndexMediaType(mmt) {
			return fmt.Errorf("index %s: manifest %s: %w: nested indexes are not supported", dig, m.Digest, core.ErrUnsupported)
		}
		rec, err := c.manifest(ctx, m, mdata, mmt, ref, dig)
		if err != nil {
			return err
		}
		c.recs[at].Size += rec.Size
		c.recs = append(c.recs, rec)
	}
	return nil
}

// manifestBlob returns the verified bytes of manifest or index d, from the
// store when it is already there, else fetched and staged.
func (c *copier) manifestBlob(ctx context.Context, d v1.Descriptor, what string) ([]byte, string, error) {
	dig := d.Digest.String()
	if err := checkDigest(dig); err != nil {
		return nil, "", err
	}
	var data []byte
	if c.st.has(dig) {
		var err error
		if data, err = c.st.read(dig, what, maxManifestSize); err != nil {
			return nil, "", err
		}
	} else {
		rc, err := c.src.open(ctx, d, true)
		if err != nil {
			return nil, "", err
		}
		data, err = readLimited(rc, maxManifestSize, what+" "+dig)
		rc.Close()
		if err != nil {
			return nil, "", err
		}
		if got := sha256Digest(data); got != dig {
			return nil, "", &core.DigestMismatchError{What: fmt.Sprintf("%s from %s", what, c.srcName), Want: dig, Got: got}
		}
		if err := c.st.put(ctx, what, dig, int64(len(data)), bytes.NewReader(data), false); err != nil {
			return nil, "", err
		}
	}
	if d.Size > 0 && int64(len(data)) != d.Size {
		return nil, "", fmt.Errorf("%s %s: %w: %d bytes, its descriptor says %d", what, dig, core.ErrInvalid, len(data), d.Size)
	}
	mt := detectMediaType(string(d.MediaType), data)
	if err := checkImageMediaType(dig, mt); err != nil {
		return nil, "", err
	}
	return data, mt, nil
}

// manifest copies the config of manifest d and queues its layers.
func (c *copier) manifest(ctx context.Context, d v1.Descriptor, data []byte, mt, ref, index string) (core.ImageRecord, error) {
	dig := d.Digest.String()
	m, err := parseManifest(data, dig)
	if err != nil {
		return core.ImageRecord{}, err
	}
	cfgDigest := m.Config.Digest.String()
	var cfgData []byte
	if c.st.has(cfgDigest) {
		cfgData, err = c.st.read(cfgDigest, "config", maxConfigSize)
	} else {
		var rc io.ReadCloser
		if rc, err = c.src.open(ctx, m.Config, false); err == nil {
			cfgData, err = readLimited(rc, maxConfigSize, "config "+cfgDigest)
			rc.Close()
		}
		if err == nil {
			err = c.st.put(ctx, fmt.Sprintf("config of manifest %s (from %s)", dig, c.srcName), cfgDigest, m.Config.Size, bytes.NewReader(cfgData), false)
		}
	}
	if err != nil {
		return core.ImageRecord{}, err
	}
	cf, err := parseConfig(cfgData, cfgDigest)
	if err != nil {
		return core.ImageRecord{}, err
	}
	plat := configPlatform(cf)
	if c.platform != nil && !platformMatches(*c.platform, plat) {
		if index == "" && !c.strict {
			return core.ImageRecord{}, errOtherPlatform
		}
		return core.ImageRecord{}, fmt.Errorf("manifest %s: %w: it is for %s, not %s", dig, core.ErrInvalid, platformString(plat), platformString(*c.platform))
	}
	if n := len(cf.RootFS.DiffIDs); n != len(m.Layers) {
		return core.ImageRecord{}, fmt.Errorf("manifest %s: %w: %d layers but its config lists %d diff ids", dig, core.ErrInvalid, len(m.Layers), n)
	}
	size := int64(len(data)) + int64(len(cfgData))
	for i, l := range m.Layers {
		size += l.Size
		ld := l.Digest.String()
		if c.queued[ld] || c.st.has(ld) {
			continue
		}
		if !c.src.has(l) {
			return core.ImageRecord{}, fmt.Errorf("manifest %s: layer %d %s: %w: not in %s", dig, i+1, ld, core.ErrInvalid, c.srcName)
		}
		c.queued[ld] = true
		c.pending = append(c.pending, pendingBlob{l, fmt.Sprintf("layer %d of manifest %s (from %s)", i+1, dig, c.srcName)})
	}
	return core.ImageRecord{Digest: dig, MediaType: mt, Ref: ref, Source: c.source, Platform: platformString(plat),
		ConfigDigest: cfgDigest, IndexDigest: index, Size: size}, nil
}

// copyLayers copies the queued layers, verifying each.
func (c *copier) copyLayers(ctx context.Context, label string) error {
	if len(c.pending) == 0 {
		return nil
	}
	var total int64
	for _, b := range c.pending {
		total += b.desc.Size
	}
	c.st.p.Start(label, total)
	defer c.st.p.Done()
	for _, b := range c.pending {
		rc, err := c.src.open(ctx, b.desc, false)
		if err != nil {
			return err
		}
		err = c.st.put(ctx, b.what, b.desc.Digest.String(), b.desc.Size, rc, true)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// readLimited reads all of r, refusing more than limit bytes.
func readLimited(r io.Reader, limit int64, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", what, core.ErrInvalid, limit)
	}
	return data, nil
}
