-- Number reserved for a migration of another branch (the numbers must be
-- contiguous); the real one replaces this file when the branches merge.
SELECT 1;
