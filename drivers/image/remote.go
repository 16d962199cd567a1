package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/runprov/runprov/core"
)

// Pull fetches ref (NAME[:TAG]@sha256:...) from its registry into the
// store, with the manifest for opts.Platform when ref names an index (the
// host's by default). A tag without a digest is refused with ErrInvalid.
// Every blob is verified while it is copied; on a mismatch (a
// *core.DigestMismatchError) nothing is kept: no blob, no row, no
// temporary file. Returns the rows stored, the index first. Credentials
// come from the keychain (by default the docker and podman config files).
func (s *Store) Pull(ctx context.Context, ref string, opts core.PullOptions) ([]core.ImageRecord, error) {
	var nopts []name.Option
	if opts.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("pull %q: %w: want NAME[:TAG]@sha256:<64 hex> (%v)", ref, core.ErrInvalid, err)
	}
	plat := s.host
	if opts.Platform != "" {
		if plat, err = parsePlatform(opts.Platform); err != nil {
			return nil, err
		}
	}
	dig, ok := r.(name.Digest)
	if !ok {
		return nil, s.refuseTag(ctx, r)
	}
	if err := checkDigest(dig.DigestStr()); err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	repo := dig.Context()
	auth, err := s.keychain.Resolve(repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), err)
	}
	tr, err := transport.NewWithContext(ctx, repo.Registry, auth, s.transport, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("connect to registry %s: %w", repo.RegistryStr(), err)
	}
	st, err := s.newStage("pull", opts.Progress)
	if err != nil {
		return nil, err
	}
	defer st.close()
	src := &registrySource{client: &http.Client{Transport: tr}, repo: repo}
	c := s.newCopier(st, src, "registry "+repo.Name(), "registry:"+ref, &plat)
	c.strict = true
	if err := c.root(ctx, v1.Descriptor{Digest: mustHash(dig.DigestStr())}, ref); err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	if err := c.copyLayers(ctx, "pull "+repo.RepositoryStr()); err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	if err := st.commit(ctx, c.recs, core.NewImageEvent(core.ImageEventPull, c.source)); err != nil {
		return nil, err
	}
	return c.recs, nil
}

// refuseTag explains that runprov pulls by digest, with the digest to pin
// when the registry tells it.
func (s *Store) refuseTag(ctx context.Context, r name.Reference) error {
	desc, err := remote.Head(r, remote.WithContext(ctx), remote.WithTransport(s.transport), remote.WithAuthFromKeychain(s.keychain))
	if err != nil {
		return fmt.Errorf("pull %s: %w: runprov pulls by digest only, as a Runfile pins it (NAME[:TAG]@sha256:...); the registry did not tell the digest of this tag: %v",
			r, core.ErrInvalid, err)
	}
	return fmt.Errorf("pull %s: %w: a tag can change, so runprov pulls by digest only; the registry says %s is %s; pin it: runprov image pull %s@%s",
		r, core.ErrInvalid, r, desc.Digest, r, desc.Digest)
}

// registrySource reads blobs and manifests over the registry API.
type registrySource struct {
	client *http.Client
	repo   name.Repository
}

var manifestAccept = strings.Join([]string{
	core.MediaTypeOCIIndex, core.MediaTypeOCIManifest, core.MediaTypeDockerList, core.MediaTypeDockerManifest,
}, ", ")

func (r *registrySource) has(v1.Descriptor) bool { return true }

func (r *registrySource) open(ctx context.Context, d v1.Descriptor, manifest bool) (io.ReadCloser, error) {
	if err := checkDigest(d.Digest.String()); err != nil {
		return nil, err
	}
	kind := "blobs"
	if manifest {
		kind = "manifests"
	}
	u := url.URL{Scheme: r.repo.Scheme(), Host: r.repo.RegistryStr(),
		Path: fmt.Sprintf("/v2/%s/%s/%s", r.repo.RepositoryStr(), kind, d.Digest)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if manifest {
		req.Header.Set("Accept", manifestAccept)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", d.Digest, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	what := fmt.Sprintf("%s %s of %s", strings.TrimSuffix(kind, "s"), d.Digest, r.repo.Name())
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil, fmt.Errorf("%s: not in the registry (HTTP 404)", what)
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, fmt.Errorf("%s: access denied (HTTP %d); log in with docker login or podman login, whose credentials runprov reads", what, resp.StatusCode)
	}
	return nil, fmt.Errorf("%s: HTTP %s: %s", what, resp.Status, strings.TrimSpace(string(body)))
}
