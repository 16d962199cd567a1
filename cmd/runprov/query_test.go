package main

import (
	"strings"
	"testing"
)

// TestQueryOneStatement: a query of several statements is refused before
// any of it runs; one statement with trailing semicolons, whitespace or
// comments runs.
func TestQueryOneStatement(t *testing.T) {
	store := historyStore(t, 0, 0, false)
	a, b := twoRuns()
	putRuns(t, store, testKernel(), a, b)
	for _, q := range []string{
		"select 1; select 2",
		"select count(*) from runs; delete from runs",
		"select 1;select 2;",
		"select ';'; select 2 -- x",
	} {
		out, errs, code := cli(t, store, "query", q)
		if code != exitRunprov || !strings.Contains(errs, "one SQL statement") || out != "" {
			t.Errorf("query %q: exit %d, want %d and a one-statement refusal, nothing on stdout:\n%s%s", q, code, exitRunprov, out, errs)
		}
	}
	for _, q := range []string{
		"select count(*) as n from runs",
		"select count(*) as n from runs;",
		"select count(*) as n from runs ;  \n",
		"select count(*) as n from runs; -- all of them",
		"select count(*) as n from runs /* ; delete from runs */ ; ;",
	} {
		out, _ := mustCLI(t, 0, store, "--json", "query", q)
		if strings.Join(strings.Fields(out), "") != `[{"n":2}]` {
			t.Errorf("query %q printed %s", q, out)
		}
	}
}
