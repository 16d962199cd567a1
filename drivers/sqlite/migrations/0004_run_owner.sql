-- The owner of a running local run is its runprov process: owner_pid on
-- owner_host, and owner_start (boot id and start time, core.ProcessStart) so
-- that a reused pid is not taken for the process that died.
ALTER TABLE runs ADD COLUMN owner_start TEXT NOT NULL DEFAULT '';
