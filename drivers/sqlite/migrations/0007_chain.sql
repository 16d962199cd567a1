-- The hash chain: every finished run (with its steps and files), every image
-- event and every config event, in the order they were written. Each entry
-- holds the sha256 of the row's canonical form and of the entry before it,
-- so the last entry's sha256 (the head) commits to everything before it.
-- runprov fsck derives it again and names what was edited, deleted,
-- inserted or reordered. Rows that existed when a store was upgraded to
-- this schema are chained then, in time order, with migrated = 1.
CREATE TABLE chain (
    seq          INTEGER PRIMARY KEY,        -- 1, 2, 3, ... in the order entries joined
    kind         TEXT NOT NULL CHECK (kind IN ('run', 'image_event', 'config_event')),
    key          TEXT NOT NULL,              -- runs.id, or image_events.id / config_events.id in decimal
    entry_sha256 TEXT NOT NULL,              -- sha256 (hex) of the row's canonical JSON
    prev_sha256  TEXT NOT NULL,              -- sha256 of entry seq-1; '' for entry 1
    sha256       TEXT NOT NULL,              -- sha256 of this entry's fields: the head when last
    chained_at   TEXT NOT NULL,              -- RFC 3339, UTC
    migrated     INTEGER NOT NULL DEFAULT 0  -- 1: chained when the store was upgraded, not when written
);
CREATE INDEX chain_key ON chain(kind, key);

-- Signed heads: runprov fsck --sign-head signs {"seq": N, "head": HEX} with
-- the site policy's sign_key, so a chain rewritten from the start (every hash
-- recomputed) no longer matches a signed head.
CREATE TABLE chain_heads (
    seq       INTEGER PRIMARY KEY,           -- the chain entry that was the head
    sha256    TEXT NOT NULL,                 -- its sha256
    key_id    TEXT NOT NULL,                 -- keys.ID of the signing key
    envelope  TEXT NOT NULL,                 -- DSSE envelope (JSON)
    signed_at TEXT NOT NULL                  -- RFC 3339, UTC
);
