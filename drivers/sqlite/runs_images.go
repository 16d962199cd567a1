package sqlite

import (
	"context"
	"fmt"
	"strings"
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

// RunsOfImages returns the ids of every recorded run, oldest first, that
// used one of digests (as its manifest or its index).
func (s *Store) RunsOfImages(ctx context.Context, digests []string) ([]string, error) {
	if len(digests) == 0 {
		return nil, nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(digests)), ", ")
	args := make([]any, 0, 2*len(digests))
	for _, d := range digests {
		args = append(args, d)
	}
	args = append(args, args...)
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM runs WHERE image_digest IN (`+marks+`) OR index_digest IN (`+marks+`)
		ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs of images: %w", mapErr(err))
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
