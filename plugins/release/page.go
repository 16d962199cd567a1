package release

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"sync"
)

//go:embed page.html.tmpl
var pageText string

// page is parsed on first use, not when every runprov command starts.
var page = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("page").Funcs(template.FuncMap{
		"num": func(f *float64) string {
			if f == nil {
				return ""
			}
			return fmt.Sprintf("%g", *f)
		},
		"finding": FindingText,
	}).Parse(pageText))
})

// WritePage writes a self-contained HTML page of a request for output
// checkers: each file with its findings and table summary, the run's
// provenance and the state of its signature, and the votes the viewer may
// see.
func WritePage(w io.Writer, v *View) error {
	return page().Execute(w, v)
}
