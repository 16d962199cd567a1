package core

import "path/filepath"

// Layout names the parts of a store directory.
type Layout struct {
	Root string
}

func (l Layout) DB() string                     { return filepath.Join(l.Root, "runprov.db") }
func (l Layout) Images() string                 { return filepath.Join(l.Root, "images") }
func (l Layout) RootfsDir() string              { return filepath.Join(l.Root, "rootfs") }
func (l Layout) Rootfs(digestHex string) string { return filepath.Join(l.Root, "rootfs", digestHex) }
func (l Layout) RunsDir() string                { return filepath.Join(l.Root, "runs") }
func (l Layout) Run(id string) string           { return filepath.Join(l.Root, "runs", id) }
func (l Layout) Volume(name string) string      { return filepath.Join(l.Root, "volumes", name) }
func (l Layout) Tmp() string                    { return filepath.Join(l.Root, "tmp") }
