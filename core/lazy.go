package core

import (
	"regexp"
	"sync"
)

// LazyRegexp compiles expr on its first use: every runprov command starts
// a process, and one that never matches an expression should not pay for
// compiling it at start.
func LazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
