package sqlite

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The plain readers agree with encoding/json on every text they accept,
// and decline the rest (which encoding/json then reads).
func TestPlainJSON(t *testing.T) {
	for _, c := range []struct {
		text      string
		list, obj bool // accepted as a list, as an object
	}{
		{`[]`, true, false},
		{`{}`, false, true},
		{`["PATH=/usr/bin:/bin","A=b,c]","é"]`, true, false},
		{`{"N":"0","k":"v:w","k":"last"}`, false, true},
		{`[""]`, true, false},
		{`["a\"b"]`, false, false},
		{`["a", "b"]`, false, false},
		{`[1]`, false, false},
		{`["a",]`, false, false},
		{`["a"]x`, false, false},
		{`["a"`, false, false},
		{`{"a":1}`, false, false},
		{`{"a"}`, false, false},
		{`{"a":"b",}`, false, false},
		{"[\"a\xff\"]", false, false},
		{"[\"a\tb\"]", false, false},
		{`null`, false, false},
	} {
		_, okL := plainStrings(c.text)
		_, okM := plainStringMap(c.text)
		if okL != c.list || okM != c.obj {
			t.Errorf("%s: accepted as list %v, object %v; want %v, %v", c.text, okL, okM, c.list, c.obj)
		}
		checkPlain(t, c.text)
	}
}

// checkPlain fails when a plain reader accepts text and reads it other
// than encoding/json.
func checkPlain(t *testing.T, text string) {
	t.Helper()
	if got, ok := plainStrings(text); ok {
		var want []string
		if err := json.Unmarshal([]byte(text), &want); err != nil || !reflect.DeepEqual(got, want) || want == nil {
			t.Errorf("list %q: plain %q, encoding/json %q (%v)", text, got, want, err)
		}
	}
	if got, ok := plainStringMap(text); ok {
		var want map[string]string
		if err := json.Unmarshal([]byte(text), &want); err != nil || !reflect.DeepEqual(got, want) || want == nil {
			t.Errorf("object %q: plain %v, encoding/json %v (%v)", text, got, want, err)
		}
	}
}

func FuzzPlainJSON(f *testing.F) {
	for _, s := range []string{`[]`, `{}`, `["a","b"]`, `{"a":"b","c":"d"}`, `["a\"b"]`, `{"a":"b"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) { checkPlain(t, text) })
}
