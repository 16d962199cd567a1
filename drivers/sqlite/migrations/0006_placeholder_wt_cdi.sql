-- Placeholder on branch wt-cdi only, so that 0010 applies here: drop it when
-- the branch that owns migration 0006 merges.
SELECT 1;
