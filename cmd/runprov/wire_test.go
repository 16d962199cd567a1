package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDriversBuiltOnlyInWire fails when a file of cmd/runprov other than
// wire.go constructs a driver: a composite literal of a drivers/* type that
// has methods, or a call of a drivers/* package's New* or Open function.
func TestDriversBuiltOnlyInWire(t *testing.T) {
	driverTypes := driverTypesWithMethods(t)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if name == "wire.go" || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		drivers := driverImports(f) // local name → drivers/PKG
		ast.Inspect(f, func(n ast.Node) bool {
			var what string
			switch n := n.(type) {
			case *ast.CompositeLit:
				if pkg, typ, ok := qualified(n.Type, drivers); ok && driverTypes[pkg+"."+typ] {
					what = "literal " + pkg + "." + typ
				}
			case *ast.CallExpr:
				if pkg, fn, ok := qualified(n.Fun, drivers); ok && (strings.HasPrefix(fn, "New") || fn == "Open") {
					what = "call " + pkg + "." + fn
				}
			}
			if what != "" {
				t.Errorf("%s: %s: drivers are constructed in wire.go only", fset.Position(n.Pos()), what)
			}
			return true
		})
	}
}

// qualified splits pkg.Name (or &pkg.Name) when pkg is a drivers import.
func qualified(e ast.Expr, drivers map[string]string) (pkg, name string, ok bool) {
	if u, isUnary := e.(*ast.UnaryExpr); isUnary {
		e = u.X
	}
	sel, isSel := e.(*ast.SelectorExpr)
	if !isSel {
		return "", "", false
	}
	id, isID := sel.X.(*ast.Ident)
	if !isID {
		return "", "", false
	}
	pkg, ok = drivers[id.Name]
	return pkg, sel.Sel.Name, ok
}

// driverImports maps the local names of f's drivers/* imports to the
// driver's folder name.
func driverImports(f *ast.File) map[string]string {
	out := map[string]string{}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		_, dir, ok := strings.Cut(path, "/runprov/drivers/")
		if !ok {
			continue
		}
		local := filepath.Base(dir)
		if imp.Name != nil {
			local = imp.Name.Name
		}
		out[local] = dir
	}
	return out
}

// driverTypesWithMethods lists "pkg.Type" for every type of drivers/* that
// has a method: a thing that does work, not a plain options or data struct.
func driverTypesWithMethods(t *testing.T) map[string]bool {
	t.Helper()
	dirs, err := os.ReadDir(filepath.Join("..", "..", "drivers"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	fset := token.NewFileSet()
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		files, _ := filepath.Glob(filepath.Join("..", "..", "drivers", d.Name(), "*.go"))
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Recv == nil || len(fn.Recv.List) == 0 {
					continue
				}
				recv := fn.Recv.List[0].Type
				if star, ok := recv.(*ast.StarExpr); ok {
					recv = star.X
				}
				if id, ok := recv.(*ast.Ident); ok && ast.IsExported(id.Name) {
					out[d.Name()+"."+id.Name] = true
				}
			}
		}
	}
	if !out["runtime.Runc"] || !out["slurm.Client"] {
		t.Fatalf("found no driver types in ../../drivers: %v", out)
	}
	return out
}
