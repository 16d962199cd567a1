-- Signed image approvals and revocations (runprov image approve --key): the
-- DSSE envelope as signed, with what runprov read from it when it was made.
-- Each also has an image_events row (event approve or revoke, its note
-- naming the key and the envelope sha256), which puts it in the hash chain.
CREATE TABLE image_approvals (
    id       INTEGER PRIMARY KEY,
    digest   TEXT NOT NULL,                                   -- subject: sha256:<hex>
    kind     TEXT NOT NULL CHECK (kind IN ('approve', 'revoke')),
    key_id   TEXT NOT NULL,                                   -- signer: sha256 of PKIX DER, hex
    sha256   TEXT NOT NULL UNIQUE,                            -- hex sha256 of envelope
    envelope BLOB NOT NULL,                                   -- the DSSE envelope, JSON
    at       TEXT NOT NULL
);
CREATE INDEX image_approvals_digest ON image_approvals(digest);

-- The signed approval a run relied on, when the site policy names approver
-- keys (a side table, so that the chained columns of runs stay as they are).
CREATE TABLE run_approvals (
    run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    key_id TEXT NOT NULL,
    sha256 TEXT NOT NULL            -- image_approvals.sha256
);
