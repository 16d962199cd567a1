-- Store settings such as require-approval.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Runfile repositories. container_run_commands is a tar of the repository's
-- .git directory (the seed proposal's column); the repo opens from it alone.
CREATE TABLE repos (
    id                     INTEGER PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    branch                 TEXT NOT NULL DEFAULT 'main',
    head                   TEXT NOT NULL DEFAULT '',
    container_run_commands BLOB NOT NULL,
    tarball_sha256         TEXT NOT NULL,
    tarball_size           INTEGER NOT NULL,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);

-- The commit index: one row per commit and Runfile it adds or changes.
CREATE TABLE commits (
    repo_id      INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    hash         TEXT NOT NULL,
    path         TEXT NOT NULL,
    blob         TEXT NOT NULL,
    image_ref    TEXT NOT NULL,
    image_digest TEXT NOT NULL,
    message      TEXT NOT NULL,
    author       TEXT NOT NULL,
    committed_at TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (repo_id, hash, path)
);
CREATE INDEX commits_hash ON commits(hash);
CREATE INDEX commits_seq ON commits(seq);
CREATE INDEX commits_image ON commits(image_digest);

-- DSI Environment and Hostname: who ran, where. Content-addressed: identical
-- snapshots are stored once and shared by runs.
CREATE TABLE environments (
    sha256     TEXT PRIMARY KEY,
    uid        INTEGER NOT NULL,
    gid        INTEGER NOT NULL,
    user       TEXT NOT NULL,
    groups     TEXT NOT NULL,  -- JSON array of gids
    hostname   TEXT NOT NULL,
    first_seen TEXT NOT NULL
);

-- DSI SystemKernel: the kernel and system a run saw. Key columns for queries,
-- the full snapshot (sysctls, modules, kernel config, errors) as JSON.
CREATE TABLE system_kernels (
    sha256          TEXT PRIMARY KEY,
    kernel_release  TEXT NOT NULL,
    kernel_version  TEXT NOT NULL,
    os_release      TEXT NOT NULL,
    arch            TEXT NOT NULL,
    cpu_model       TEXT NOT NULL,
    cpu_count       INTEGER NOT NULL,
    mem_total_bytes INTEGER NOT NULL,
    runtime_name    TEXT NOT NULL,
    runtime_version TEXT NOT NULL,
    snapshot        TEXT NOT NULL,
    first_seen      TEXT NOT NULL
);
