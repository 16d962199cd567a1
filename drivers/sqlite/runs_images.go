package sqlite

import (
	"context"
	"fmt"
)

// UnfinishedRunsOfImage returns the ids of queued or running runs that use
// the image digest (as their manifest or their index), so that removing
// the image can be refused while they need its root filesystem.
func (s *Store) UnfinishedRunsOfImage(ctx context.Context, digest string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM runs
		WHERE status IN ('queued', 'running') AND (image_digest = ? OR index_digest = ?) ORDER BY created_at`, digest, digest)
	if err != nil {
		return nil, fmt.Errorf("list runs of image %s: %w", digest, mapErr(err))
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
