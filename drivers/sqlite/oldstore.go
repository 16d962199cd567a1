package sqlite

import "context"

// InitAtVersion creates a store whose schema stops at version, as an older
// runprov made it, so that tests can fill it and check the upgrade. runprov
// itself never calls it.
func InitAtVersion(ctx context.Context, dir string, settings map[string]string, version int) (*Store, error) {
	s, _, err := Init(ctx, dir, settings, Options{migrateTo: version})
	return s, err
}
