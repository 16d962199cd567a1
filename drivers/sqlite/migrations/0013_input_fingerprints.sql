-- The input cache: per absolute host path, the stat fingerprint of a file
-- as it was when it hashed to sha256. A run takes the sha256 of an input
-- file whose fingerprint still matches instead of reading it again.
CREATE TABLE input_fingerprints (
    path      TEXT PRIMARY KEY,        -- absolute host path
    dev       INTEGER NOT NULL,
    ino       INTEGER NOT NULL,
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    ctime_ns  INTEGER NOT NULL,
    sha256    TEXT NOT NULL,           -- hex
    hashed_at TEXT NOT NULL            -- when the file was read in full
) WITHOUT ROWID;

-- An input file whose sha256 came from the cache records when that hash
-- was computed; NULL when the run read the file itself.
ALTER TABLE run_files ADD COLUMN cached_at TEXT;
