package core

import (
	"fmt"
	"sort"
)

// Component is anything the Terminal can hold: a plugin or a driver, known by a
// unique name ("consumer", "sqlite", "runc").
type Component interface {
	Name() string
}

// Registry holds components of one kind by name. Register panics on a
// duplicate name: wiring is done once, in one place, at start-up, so a clash is
// a programming error, not a runtime condition.
type Registry[T Component] struct {
	kind  string
	items map[string]T
}

// NewRegistry returns an empty registry; kind names it in errors ("runtime").
func NewRegistry[T Component](kind string) *Registry[T] {
	return &Registry[T]{kind: kind, items: map[string]T{}}
}

// Register adds c under c.Name(). It panics if the name is taken.
func (r *Registry[T]) Register(c T) {
	name := c.Name()
	if _, dup := r.items[name]; dup {
		panic(fmt.Sprintf("core: %s %q registered twice", r.kind, name))
	}
	r.items[name] = c
}

// Get returns the component named name, or an error wrapping ErrNotFound that
// lists the names that exist.
func (r *Registry[T]) Get(name string) (T, error) {
	c, ok := r.items[name]
	if !ok {
		var zero T
		return zero, fmt.Errorf("%s %q: %w (known: %v)", r.kind, name, ErrNotFound, r.Names())
	}
	return c, nil
}

// Names returns the registered names, sorted.
func (r *Registry[T]) Names() []string {
	names := make([]string, 0, len(r.items))
	for n := range r.items {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// All returns the registered components in name order.
func (r *Registry[T]) All() []T {
	out := make([]T, 0, len(r.items))
	for _, n := range r.Names() {
		out = append(out, r.items[n])
	}
	return out
}

// Terminal is the DSI Terminal: the one object that knows every plugin and
// driver of a runprov process. cmd/runprov builds it in its wiring file; the
// rest of the program asks it for components by name and role.
type Terminal struct {
	Plugins *Registry[Component]
	Drivers *Registry[Component]
}

// NewTerminal returns a Terminal with empty registries.
func NewTerminal() *Terminal {
	return &Terminal{
		Plugins: NewRegistry[Component]("plugin"),
		Drivers: NewRegistry[Component]("driver"),
	}
}

// Lookup returns the component named name from reg if it has role T (an
// interface such as Runtime or Collector).
func Lookup[T any](reg *Registry[Component], name string) (T, error) {
	var zero T
	c, err := reg.Get(name)
	if err != nil {
		return zero, err
	}
	t, ok := c.(T)
	if !ok {
		return zero, fmt.Errorf("%s %q: %w: it does not have the role %T", reg.kind, name, ErrUnsupported, (*T)(nil))
	}
	return t, nil
}

// All returns every component of reg that has role T, in name order.
func All[T any](reg *Registry[Component]) []T {
	var out []T
	for _, c := range reg.All() {
		if t, ok := c.(T); ok {
			out = append(out, t)
		}
	}
	return out
}
