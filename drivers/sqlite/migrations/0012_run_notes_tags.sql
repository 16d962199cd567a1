-- Notes and tags of runs (run --note, runprov tag): an append-only log of
-- events in a side table, so that the chained columns of runs stay as they
-- are. Each event joins the hash chain when it is written (kind
-- run_event), so fsck finds a note or a tag edited, deleted or slipped in
-- behind runprov's back; moving a tag is an untag event and a tag event.
CREATE TABLE run_events (
    id     INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    action TEXT NOT NULL CHECK (action IN ('note', 'tag', 'untag')),
    value  TEXT NOT NULL,             -- the note's text or the tag's name
    at     TEXT NOT NULL,
    user   TEXT NOT NULL,
    uid    INTEGER NOT NULL
);
CREATE INDEX run_events_run ON run_events(run_id);
CREATE INDEX run_events_value ON run_events(value, run_id);

-- The tags runs have now: those whose last tag or untag event is a tag.
CREATE VIEW run_tags AS
SELECT e.run_id, e.value AS name, e.at, e.user
FROM run_events e
WHERE e.action = 'tag' AND e.id = (
    SELECT max(x.id) FROM run_events x
    WHERE x.run_id = e.run_id AND x.value = e.value AND x.action IN ('tag', 'untag'));

-- The notes of runs, oldest first.
CREATE VIEW run_notes AS
SELECT run_id, value AS note, at, user FROM run_events WHERE action = 'note';

-- The chain takes run events too. SQLite cannot change a CHECK constraint,
-- so the table is made again with the entries as they were.
CREATE TABLE chain_0012 (
    seq          INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('run', 'image_event', 'config_event', 'run_event')),
    key          TEXT NOT NULL,              -- runs.id, or the event table's id in decimal
    entry_sha256 TEXT NOT NULL,
    prev_sha256  TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    chained_at   TEXT NOT NULL,
    migrated     INTEGER NOT NULL DEFAULT 0
);
INSERT INTO chain_0012(seq, kind, key, entry_sha256, prev_sha256, sha256, chained_at, migrated)
    SELECT seq, kind, key, entry_sha256, prev_sha256, sha256, chained_at, migrated FROM chain;
DROP TABLE chain;
ALTER TABLE chain_0012 RENAME TO chain;
CREATE INDEX chain_key ON chain(kind, key);
