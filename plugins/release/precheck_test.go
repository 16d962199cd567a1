package release

import (
	"io"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
)

func opener(s string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

// TestPrecheck: each rule names the file, the rule and where; refusals
// are marked, small counts are left for a checker to judge.
func TestPrecheck(t *testing.T) {
	rules := (&core.Policy{ReleaseRules: core.ReleaseRules{MaxRows: 3, MaxBytes: 100}}).Release()
	for _, tc := range []struct {
		name, content string
		size          int64
		want          []string // rule@where, in order
		refuse        bool
	}{
		{"ok.csv", "region,n\nnorth,12\n", 0, nil, false},
		{"big.csv", "", 101, []string{"max-size@"}, true},
		{"model.pkl", "x", 0, []string{"allowed-types@"}, true},
		{"Upper.CSV", "a,b\n1,2\n", 0, nil, false},
		{"ids.csv", "Age,NHS_Number\n1,2\n", 0, []string{"forbidden-column@column 2 (NHS_Number)"}, true},
		{"name.tsv", "name\tcount\nx\t12\n", 0, []string{"forbidden-column@column 1 (name)"}, true},
		{"rows.csv", "a\n1\n2\n3\n4\n", 0, []string{"max-rows@"}, true},
		{"small.csv", "group,n,mean\na,3,1.5\nb,0,2\nc,9,3\n", 0, []string{"small-count@row 2, column 2 (n)", "small-count@row 4, column 2 (n)"}, false},
		{"counts.tsv", "k\tpatients_count\nx\t5\n", 0, []string{"small-count@row 2, column 2 (patients_count)"}, false},
		{"notes.txt", "n,1\n", 0, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size := tc.size
			if size == 0 {
				size = int64(len(tc.content))
			}
			fs, _, err := Precheck(tc.name, size, opener(tc.content), rules)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				if f.File != tc.name || f.Detail == "" {
					t.Errorf("finding %+v lacks its file or detail", f)
				}
				got = append(got, f.Rule+"@"+f.Where)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("findings %v, want %v", got, tc.want)
			}
			if refuse := len(Refusals(fs)) > 0; refuse != tc.refuse {
				t.Errorf("refused %t, want %t", refuse, tc.refuse)
			}
		})
	}
}

// TestPrecheckTable: the summary a checker sees: rows, and each numeric
// column's range.
func TestPrecheckTable(t *testing.T) {
	_, tab, err := Precheck("t.csv", 40, opener("region,n,mean\nnorth,120,1.5\nsouth,45,\n"), (&core.Policy{}).Release())
	if err != nil || tab == nil {
		t.Fatal(tab, err)
	}
	n, region, mean := tab.Columns[1], tab.Columns[0], tab.Columns[2]
	if tab.Rows != 2 || region.Numeric || !n.Numeric || *n.Min != 45 || *n.Max != 120 || mean.Empty != 1 {
		t.Errorf("table %+v, n %+v", tab, n)
	}
}

// FuzzPrecheck: any table gives findings about its own file, and never a
// panic; a refusal always has a reason.
func FuzzPrecheck(f *testing.F) {
	for _, s := range []string{"a,n\nx,3\n", "patient_id\n1\n", "\"a\nb\",n\n1,2", "\ufeffcount\n-1\n1e9\nNaN\n", ""} {
		f.Add(s, false)
		f.Add(s, true)
	}
	rules := (&core.Policy{}).Release()
	f.Fuzz(func(t *testing.T, content string, tsv bool) {
		name := "f.csv"
		if tsv {
			name = "f.tsv"
		}
		fs, _, err := Precheck(name, int64(len(content)), opener(content), rules)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range fs {
			if x.File != name || x.Rule == "" || x.Detail == "" {
				t.Errorf("finding %+v", x)
			}
		}
	})
}
