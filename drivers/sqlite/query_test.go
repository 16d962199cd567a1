package sqlite

import "testing"

func TestCountStatements(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want int
	}{
		{"", 0},
		{" -- only a comment", 0},
		{"select 1", 1},
		{"select 1;", 1},
		{"select 1 ;  \n\t", 1},
		{"select 1; -- done", 1},
		{"select 1; /* done */ ;;", 1},
		{"select 1 -- ; select 2", 1},
		{"select 1 /* ; select 2 */", 1},
		{"select ';' as a, \"b;\" as [c;], `d;`", 1},
		{"select 'it''s; fine'", 1},
		{"create trigger t after insert on x begin select 1; select 2; end;", 1},
		{"select 1; select 2", 2},
		{"select 1;select 2;", 2},
		{"select 1; delete from runs", 2},
		{"select ';'; select 2 -- x", 2},
		{"select 1; -- x\n select 2", 2},
		{"select 1; select 2; select 3", 3},
	} {
		got, err := countStatements(c.sql)
		if err != nil || got != c.want {
			t.Errorf("countStatements(%q) = %d, %v; want %d", c.sql, got, err, c.want)
		}
	}
}
