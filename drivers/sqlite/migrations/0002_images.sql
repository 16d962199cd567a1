-- Images kept in STORE/images (an OCI image layout): one row per index or
-- manifest. The blobs themselves live in the layout; these rows say where an
-- image came from and whether it is approved to run.
CREATE TABLE images (
    digest        TEXT PRIMARY KEY,              -- "sha256:<64 hex>" of the index or manifest
    media_type    TEXT NOT NULL,                 -- OCI or Docker index / manifest media type
    ref           TEXT NOT NULL DEFAULT '',      -- NAME[:TAG][@DIGEST] it came with
    source        TEXT NOT NULL,                 -- oci-layout:PATH, oci-archive:PATH, docker-archive:PATH, registry:REF
    platform      TEXT NOT NULL DEFAULT '',      -- manifests: os/arch[/variant]
    config_digest TEXT NOT NULL DEFAULT '',      -- manifests: digest of the image config
    index_digest  TEXT NOT NULL DEFAULT '',      -- manifests stored with an index: that index
    size          INTEGER NOT NULL,              -- bytes of every blob the image holds
    imported_at   TEXT NOT NULL,                 -- RFC 3339, UTC
    approved      INTEGER NOT NULL DEFAULT 0,    -- 1: may run when require-approval is true
    approval_note TEXT NOT NULL DEFAULT '',
    approved_by   TEXT NOT NULL DEFAULT '',
    approved_at   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX images_index_digest ON images(index_digest);

-- Everything that happened to an image, kept after the image is removed.
CREATE TABLE image_events (
    id     INTEGER PRIMARY KEY,
    digest TEXT NOT NULL,
    event  TEXT NOT NULL CHECK (event IN ('import', 'pull', 'approve', 'revoke', 'rm')),
    at     TEXT NOT NULL,                        -- RFC 3339, UTC
    user   TEXT NOT NULL,                        -- login name of who did it
    uid    INTEGER NOT NULL,
    note   TEXT NOT NULL DEFAULT ''              -- --note, or the source of an import or pull
);
CREATE INDEX image_events_digest ON image_events(digest);
