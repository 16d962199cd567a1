-- The CDI devices of a run (DEVICE lines, run --device), in the order
-- named, and the CDI spec files they came from with their sha256.
CREATE TABLE run_devices (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind   TEXT NOT NULL CHECK (kind IN ('device', 'cdi_spec')),
    idx    INTEGER NOT NULL,                          -- order within kind
    name   TEXT NOT NULL,                             -- device name, or spec file path
    sha256 TEXT NOT NULL DEFAULT '',                  -- spec files: hex sha256 of the file
    PRIMARY KEY (run_id, kind, idx)
);
