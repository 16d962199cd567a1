-- A run record's signature: the DSSE envelope of its in-toto statement
-- (runprov export RUN --format intoto --signed), and which key signed it.
CREATE TABLE run_signatures (
    run_id    TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    key_id    TEXT NOT NULL,                    -- hex sha256 of the PKIX public key
    key_kind  TEXT NOT NULL CHECK (key_kind IN ('site', 'personal')),
    signed_at TEXT NOT NULL,                    -- RFC 3339, UTC
    envelope  TEXT NOT NULL                     -- DSSE envelope, JSON
);
