-- Runs: one row per `runprov run` (or Slurm array task). Lists and small
-- structures are JSON text so `runprov query` can use json_extract on them.
CREATE TABLE runs (
    id                   TEXT PRIMARY KEY,            -- 32 lowercase hex
    repo                 TEXT NOT NULL,
    path                 TEXT NOT NULL,
    commit_hash          TEXT NOT NULL,
    runfile_blob         TEXT NOT NULL,
    image_ref            TEXT NOT NULL,
    image_digest         TEXT NOT NULL,               -- manifest digest
    index_digest         TEXT NOT NULL DEFAULT '',
    config_digest        TEXT NOT NULL DEFAULT '',
    approved             INTEGER NOT NULL DEFAULT 0,
    args                 TEXT NOT NULL DEFAULT '{}',  -- JSON object NAME -> value
    env                  TEXT NOT NULL DEFAULT '[]',  -- JSON array of KEY=VALUE
    labels               TEXT NOT NULL DEFAULT '{}',  -- JSON object
    argv                 TEXT NOT NULL DEFAULT '[]',  -- JSON array
    user                 TEXT NOT NULL,               -- UID:GID in the container
    workdir              TEXT NOT NULL DEFAULT '',
    mounts               TEXT NOT NULL DEFAULT '[]',  -- JSON array of {kind,name,source,target,read_only,size}
    limits               TEXT NOT NULL DEFAULT '{}',  -- JSON {cpus,memory_bytes,pids,timeout,note}
    runtime              TEXT NOT NULL,
    runtime_version      TEXT NOT NULL DEFAULT '',
    weaker_sandbox       INTEGER NOT NULL DEFAULT 0,
    executor             TEXT NOT NULL DEFAULT 'local',
    slurm_job_id         TEXT NOT NULL DEFAULT '',
    slurm_array_task     INTEGER,
    slurm_node           TEXT NOT NULL DEFAULT '',
    slurm_partition      TEXT NOT NULL DEFAULT '',
    hostname             TEXT NOT NULL DEFAULT '',
    environment_sha256   TEXT NOT NULL DEFAULT '',    -- environments.sha256
    system_kernel_sha256 TEXT NOT NULL DEFAULT '',    -- system_kernels.sha256
    drift                TEXT NOT NULL DEFAULT '',
    status               TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'aborted')),
    exit_code            INTEGER,
    reason               TEXT NOT NULL DEFAULT '',
    created_at           TEXT NOT NULL,               -- RFC 3339, UTC
    started_at           TEXT NOT NULL DEFAULT '',
    ended_at             TEXT NOT NULL DEFAULT '',
    reproduce_of         TEXT NOT NULL DEFAULT '',
    verdict              TEXT NOT NULL DEFAULT '',
    owner_pid            INTEGER NOT NULL DEFAULT 0,  -- the runprov process of a running local run
    owner_host           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_created ON runs(created_at);
CREATE INDEX runs_commit ON runs(commit_hash);
CREATE INDEX runs_status ON runs(status);
CREATE INDEX runs_image ON runs(image_digest);

-- Steps: the RUN lines and the main command, in order.
CREATE TABLE run_steps (
    run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    argv       TEXT NOT NULL,                         -- JSON array
    exit_code  INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    ended_at   TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
);

-- Input and output manifests: one row per file.
CREATE TABLE run_files (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind   TEXT NOT NULL CHECK (kind IN ('input', 'output')),
    name   TEXT NOT NULL,                             -- INPUT name or OUTPUT container path
    path   TEXT NOT NULL,                             -- relative, slash-separated
    size   INTEGER NOT NULL,
    sha256 TEXT NOT NULL DEFAULT '',                  -- hex; '' for links
    link   TEXT NOT NULL DEFAULT '',                  -- symlink target
    PRIMARY KEY (run_id, kind, name, path)
);
CREATE INDEX run_files_sha256 ON run_files(sha256);
