-- Placeholder: version 6 belongs to another change on its way; replace this
-- file with it when both are merged.
SELECT 1;
