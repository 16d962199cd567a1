-- Trace follows content: which runs produced (kind 'output') or used (kind
-- 'input') a sha256. An index on (sha256, kind, run_id) answers that from the
-- index alone, without a table row per file; it covers every lookup the
-- sha256-only index did, so that one goes.
DROP INDEX IF EXISTS run_files_sha256;
CREATE INDEX IF NOT EXISTS run_files_content ON run_files(sha256, kind, run_id);

-- The previous run of a commit (a report's drift) is a seek, not a sort of
-- every run of the commit; the index serves commit lookups as runs_commit did.
DROP INDEX IF EXISTS runs_commit;
CREATE INDEX IF NOT EXISTS runs_commit_created ON runs(commit_hash, created_at);
