package runfile

import (
	"sort"
	"strings"
	"unicode"
)

// Resolve expands the ARGs with the given run-time values (runprov run
// --arg K=V) over their defaults and validates everything again. It returns
// a new File with Deferred and Pending empty; f is not changed.
//
// Errors: a key that names no ARG, a value with control characters, an ARG
// without default that some line needs and args lacks, and any value that
// is not valid where it is used (e.g. a relative INPUT path), each a
// *core.PosError as from Parse.
func (f *File) Resolve(args map[string]string) (*File, error) {
	errs := &errList{path: f.Path}
	if len(f.instrs) == 0 {
		errs.add(0, "this File was not made by Parse; parse the Runfile before resolving it")
		return nil, errs.err()
	}
	declared := map[string]bool{}
	var names []string
	for _, a := range f.Args {
		declared[a.Name] = true
		names = append(names, a.Name)
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case !declared[k]:
			if len(names) == 0 {
				errs.add(0, "--arg %s: the Runfile declares no ARG %s (it declares none)", show(k), show(k))
			} else {
				errs.add(0, "--arg %s: the Runfile declares no ARG %s (it declares %s)", show(k), show(k), strings.Join(names, ", "))
			}
		case strings.IndexFunc(args[k], isBadControl) >= 0:
			// A value must be writable back into a Runfile by Format.
			errs.add(0, "--arg %s: the value has control characters; pass plain text", k)
		}
	}
	if errs.len() > 0 {
		return nil, errs.err()
	}
	values := make(map[string]string, len(args))
	for k, v := range args {
		values[k] = v
	}
	esc := '\\'
	if f.Escape == "`" {
		esc = '`'
	}
	nf := build(f.Path, f.instrs, esc, f.Version, values, errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return nf, nil
}

func isBadControl(r rune) bool { return r != '\t' && unicode.IsControl(r) }
