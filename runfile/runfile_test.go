package runfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/runprov/runprov/core"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/runfile")

const testdata = "../testdata/runfile"

// cases lists the case folders under testdata/runfile/KIND.
func cases(t testing.TB, kind string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(testdata, kind))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatalf("no cases in %s/%s", testdata, kind)
	}
	return names
}

// golden compares got with the file, or rewrites it with -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./runfile -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

func marshal(t testing.TB, f *File) []byte {
	t.Helper()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestGood(t *testing.T) {
	for _, name := range cases(t, "good") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(testdata, "good", name)
			data, err := os.ReadFile(filepath.Join(dir, "Runfile"))
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse("good/"+name+"/Runfile", data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			golden(t, filepath.Join(dir, "want.json"), marshal(t, f))
			text := f.Format()
			golden(t, filepath.Join(dir, "want.fmt"), []byte(text))
			checkRoundTrip(t, f)
		})
	}
}

func TestBad(t *testing.T) {
	for _, name := range cases(t, "bad") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(testdata, "bad", name)
			data, err := os.ReadFile(filepath.Join(dir, "Runfile"))
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse("bad/"+name+"/Runfile", data)
			if err == nil {
				t.Fatalf("Parse succeeded:\n%s", f.Format())
			}
			checkErr(t, err)
			golden(t, filepath.Join(dir, "want.err"), []byte(err.Error()+"\n"))
		})
	}
}

// checkErr asserts the error contract: one *core.PosError, or at most
// maxErrors of them joined in line order; all match core.ErrInvalid.
func checkErr(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, core.ErrInvalid) {
		t.Errorf("error does not match core.ErrInvalid: %v", err)
	}
	var pe *core.PosError
	if errors.As(err, &pe) && err == error(pe) {
		return
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error is %T, not a *core.PosError or joined ones: %v", err, err)
	}
	errs := joined.Unwrap()
	if len(errs) < 2 || len(errs) > maxErrors {
		t.Errorf("%d joined errors, want 2 to %d", len(errs), maxErrors)
	}
	line := -1
	for _, e := range errs {
		pe, ok := e.(*core.PosError)
		if !ok {
			t.Fatalf("joined error is %T, not *core.PosError: %v", e, e)
		}
		if pe.Line < line {
			t.Errorf("errors not in line order: %v", err)
		}
		line = pe.Line
	}
}

// comparable returns a copy of f without what Format does not keep: line
// numbers, the path and the parsed instructions.
func comparable(t testing.TB, f *File) *File {
	t.Helper()
	var c File
	if err := json.Unmarshal(marshal(t, f), &c); err != nil {
		t.Fatal(err)
	}
	zeroLines(reflect.ValueOf(&c).Elem())
	c.Path = ""
	return &c
}

func zeroLines(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			zeroLines(v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			zeroLines(v.Index(i))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).Name == "Line" {
				v.Field(i).SetInt(0)
				continue
			}
			if v.Type().Field(i).IsExported() {
				zeroLines(v.Field(i))
			}
		}
	}
}

// checkRoundTrip asserts Parse(Format(f)) == f, and that Format is stable.
func checkRoundTrip(t testing.TB, f *File) {
	t.Helper()
	text := f.Format()
	if len(text) > maxFileSize {
		// Quoting and expansion can make the canonical text larger than
		// the file; above the size limit it cannot read back.
		t.Skipf("formatted text is %d bytes", len(text))
	}
	g, err := Parse("formatted", []byte(text))
	if err != nil {
		t.Fatalf("Parse(Format(f)): %v\n--- formatted:\n%s", err, text)
	}
	if want, got := comparable(t, f), comparable(t, g); !reflect.DeepEqual(want, got) {
		t.Fatalf("Parse(Format(f)) differs from f\n--- formatted:\n%s\n--- f:\n%s\n--- again:\n%s", text, marshal(t, want), marshal(t, got))
	}
	if again := g.Format(); again != text {
		t.Fatalf("Format not stable\n--- first:\n%s\n--- second:\n%s", text, again)
	}
}

const digest = "sha256:9d75f0d7c398df565d7ac04c6819b62d6d8f9560f5eb4672596ecd8f7e96ae91"

func TestResolve(t *testing.T) {
	const runfile = "FROM busybox@" + digest + "\n" +
		"ARG DATA\n" +
		"ARG MEM=1G\n" +
		"INPUT data ${DATA}\n" +
		"LIMIT memory=${MEM}\n"
	f, err := Parse("Runfile", []byte(runfile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Deferred, []string{"DATA"}) {
		t.Fatalf("Deferred = %q, want [DATA]", f.Deferred)
	}
	if len(f.Pending) != 1 || f.Pending[0].Line != 4 || f.Inputs[0].Target != "${DATA}" {
		t.Fatalf("Pending = %+v, Inputs = %+v; want line 4 pending with its text kept", f.Pending, f.Inputs)
	}
	tests := []struct {
		name    string
		args    map[string]string
		wantErr string
		check   func(t *testing.T, r *File)
	}{
		{
			name: "absolute path",
			args: map[string]string{"DATA": "/mnt/data/"},
			check: func(t *testing.T, r *File) {
				if r.Inputs[0].Target != "/mnt/data" || r.Limits.MemoryBytes != 1<<30 {
					t.Errorf("Inputs = %+v, Limits = %+v", r.Inputs, r.Limits)
				}
				if len(r.Deferred) != 0 || len(r.Pending) != 0 {
					t.Errorf("Deferred = %q, Pending = %+v; want both empty", r.Deferred, r.Pending)
				}
				if r.Args[0].Value != "/mnt/data/" || r.Args[1].Value != "1G" {
					t.Errorf("Args = %+v", r.Args)
				}
			},
		},
		{
			name: "override default",
			args: map[string]string{"DATA": "/d", "MEM": "2G"},
			check: func(t *testing.T, r *File) {
				if r.Limits.MemoryBytes != 2<<30 || r.Args[1].Default != "1G" || r.Args[1].Value != "2G" {
					t.Errorf("Limits = %+v, Args = %+v", r.Limits, r.Args)
				}
			},
		},
		{
			name:    "relative path",
			args:    map[string]string{"DATA": "data"},
			wantErr: "Runfile:4: INPUT data target data is a relative path; container paths must be absolute, like /data",
		},
		{
			name:    "bad override",
			args:    map[string]string{"DATA": "/d", "MEM": "lots"},
			wantErr: "Runfile:5: LIMIT memory: lots is not a size like 512M, 2G or 1073741824 (units K, M, G, T are powers of 1024)",
		},
		{
			name:    "unknown arg",
			args:    map[string]string{"DATA": "/d", "DTA": "/x"},
			wantErr: "Runfile: --arg DTA: the Runfile declares no ARG DTA (it declares DATA, MEM)",
		},
		{
			name:    "missing value",
			args:    map[string]string{},
			wantErr: "Runfile:2: ARG DATA has no default; pass --arg DATA=VALUE",
		},
		{
			name:    "nil args",
			wantErr: "Runfile:2: ARG DATA has no default; pass --arg DATA=VALUE",
		},
		{
			name:    "control character",
			args:    map[string]string{"DATA": "/d\n"},
			wantErr: "Runfile: --arg DATA: the value has control characters; pass plain text",
		},
		{
			name:    "mount clash",
			args:    map[string]string{"DATA": "/proc/x"},
			wantErr: "Runfile:4: INPUT data target /proc/x is under /proc; mounts may not cover /proc, /sys or /dev",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := f.Resolve(tt.args)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Resolve succeeded, want %q", tt.wantErr)
				}
				checkErr(t, err)
				if err.Error() != tt.wantErr {
					t.Fatalf("error:\n got %s\nwant %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
			if len(f.Deferred) != 1 || f.Inputs[0].Target != "${DATA}" {
				t.Errorf("Resolve changed f: %+v", f)
			}
			// A resolved File formats as a literal Runfile.
			g, err := Parse("formatted", []byte(r.Format()))
			if err != nil {
				t.Fatalf("Parse(Format(r)): %v\n%s", err, r.Format())
			}
			if g.Format() != r.Format() || g.Inputs[0].Target != r.Inputs[0].Target {
				t.Errorf("Format(Parse(Format(r))) differs:\n%s\n%s", g.Format(), r.Format())
			}
		})
	}
}

func TestResolveChains(t *testing.T) {
	// ARG defaults and ENV values that use a deferred ARG wait for it too;
	// an ENV of the same name wins over an ARG, as in Dockerfiles.
	const runfile = "FROM busybox@" + digest + "\n" +
		"ARG ROOT\n" +
		"ARG SUB=${ROOT}/sub\n" +
		"ENV OUT=${SUB}/out\n" +
		"OUTPUT ${OUT}\n" +
		"ARG UID\n" +
		"USER ${UID}\n"
	f, err := Parse("Runfile", []byte(runfile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Deferred, []string{"ROOT", "UID"}) {
		t.Errorf("Deferred = %q", f.Deferred)
	}
	if f.User.Default || f.User.UID != DefaultUID || f.User.GID != DefaultGID {
		t.Errorf("User = %+v, want a pending USER with nobody's ids", f.User)
	}
	checkRoundTrip(t, f)
	r, err := f.Resolve(map[string]string{"ROOT": "/r", "UID": "1234"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Outputs[0].Target != "/r/sub/out" || r.User.UID != 1234 || r.User.GID != 1234 {
		t.Errorf("Outputs = %+v, User = %+v", r.Outputs, r.User)
	}
	_, err = f.Resolve(map[string]string{"ROOT": "/r", "UID": "0"})
	if want := "Runfile:7: USER 0: UID 0 is root; runs never run as root: use non-zero ids, like 1000:1000"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	// Missing values are reported once each, at the ARG.
	_, err = f.Resolve(nil)
	want := "Runfile:2: ARG ROOT has no default; pass --arg ROOT=VALUE\nRunfile:6: ARG UID has no default; pass --arg UID=VALUE"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant\n%s", err, want)
	}
}

func TestInputLimits(t *testing.T) {
	from := "FROM busybox@" + digest + "\n"
	tests := []struct {
		name, data, want string
	}{
		{"too large", strings.Repeat("# padding\n", maxFileSize/10+1), "x: the file is 1048580 bytes; a Runfile may be at most 1 MiB (1048576 bytes)"},
		{"huge line", from + "ENV A=" + strings.Repeat("a", maxLineLen), "x:2: the line is 32774 bytes long; a line may be at most 32768 bytes (split it with continuation lines)"},
		{"invalid utf-8", from + "ENV A=\xff\n", "x:2: the line is not valid UTF-8; a Runfile is UTF-8 text"},
		{"control", from + "ENV A=\x1b[31m\n", "x:2: the line has the control character U+001B; a Runfile is plain text"},
		// 6000 bytes × 10 per line: the 140th line passes 8 MiB.
		{"expansion bomb", "ARG A=" + strings.Repeat("x", 6000) + "\n" + from +
			strings.Repeat("ENV B=${A}${A}${A}${A}${A}${A}${A}${A}${A}${A}\n", 200),
			"x:142: the variables expand to more than 8 MiB of text; a Runfile cannot be that large"},
		{"word too long", "ARG A=" + strings.Repeat("x", 30000) + "\n" + from + "ENV B=${A}${A}${A}\n",
			"x:3: ENV B expands to 90000 bytes; a value may be at most 65536"},
		{"deep nesting", from + "ARG A=1\nENV B=" + strings.Repeat("${A:-", 40) + strings.Repeat("}", 40) + "\n",
			"x:3: ENV B: ${...} is nested more than 32 deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x", []byte(tt.data))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			checkErr(t, err)
			if err.Error() != tt.want {
				t.Errorf("error:\n got %.300s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestManyErrors(t *testing.T) {
	data := "FROM busybox@" + digest + "\n" + strings.Repeat("EXPOSE 80\n", 50)
	_, err := Parse("x", []byte(data))
	checkErr(t, err)
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != maxErrors {
		t.Errorf("%d errors, want %d", n, maxErrors)
	}
}

func TestSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1": 1, "1024": 1024, "1024B": 1024, "1K": 1 << 10, "1k": 1 << 10, "512M": 512 << 20,
		"2G": 2 << 30, "2Gi": 2 << 30, "2GiB": 2 << 30, "2GB": 2 << 30, "2gb": 2 << 30, "1T": 1 << 40,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
		if back, _ := parseSize(formatSize(got)); back != got {
			t.Errorf("formatSize(%d) = %q reads back as %d", got, formatSize(got), back)
		}
	}
	for _, in := range []string{"", "0", "0G", "-1", "1.5G", "2X", "2iB", "G", "9999999999999999999", "8388608T", " 1G"} {
		if n, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, n)
		}
	}
}

func TestQuoteWord(t *testing.T) {
	for _, esc := range []rune{'\\', '`'} {
		for _, s := range []string{"", "plain", "a b", `"q"`, "$HOME", "${X}", `back\slash`, "tick`", "'single'", "-x", "tab\there", "ünï", "<<EOF", "#x", "="} {
			q := quoteWord(s, esc)
			words := splitWords(q, esc)
			if len(words) != 1 || words[0] != q {
				t.Errorf("quoteWord(%q, %q) = %s splits into %q", s, esc, q, words)
				continue
			}
			b := &builder{lex: shell.NewLex(esc), vars: newVars(), undefined: map[string]bool{}, errs: &errList{}, ins: &instruction{}}
			got, deferred, ok := b.expand("test", q)
			if !ok || got != s || len(deferred) != 0 {
				t.Errorf("quoteWord(%q, %q) = %s reads back as %q", s, esc, q, got)
			}
		}
	}
}

func TestSuggest(t *testing.T) {
	for word, want := range map[string]string{"INPTU": "INPUT", "inptu": "INPUT", "ENTRYPONT": "ENTRYPOINT", "FOO": "", "SCRATH": "SCRATCH", "LIMITS": "LIMIT", "X": ""} {
		if got := suggest(word, kinds); got != want {
			t.Errorf("suggest(%q) = %q, want %q", word, got, want)
		}
	}
}

func TestResolveConcurrent(t *testing.T) {
	f, err := Parse("Runfile", []byte("FROM busybox@"+digest+"\nARG DIR\nINPUT data ${DIR}\nCMD [\"ls\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for i := range 8 {
		go func() {
			r, err := f.Resolve(map[string]string{"DIR": "/d" + strconv.Itoa(i)})
			if err == nil && r.Inputs[0].Target != "/d"+strconv.Itoa(i) {
				err = errors.New("wrong target " + r.Inputs[0].Target)
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(testdata, "good", "full", "Runfile"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("Runfile", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseWorst is a 1 MiB file where every line is refused by
// buildkit's parser: the most re-parsing Parse does.
func BenchmarkParseWorst(b *testing.B) {
	data := []byte(strings.Repeat("ENV A\n", maxFileSize/6))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("Runfile", data); err == nil {
			b.Fatal("Parse succeeded")
		}
	}
}
