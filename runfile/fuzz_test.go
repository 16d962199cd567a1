package runfile

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// fuzzCorpus is the committed seed corpus. Go looks in
// runfile/testdata/fuzz; the project keeps fixtures under the top testdata,
// so FuzzParse reads them itself.
const fuzzCorpus = "../testdata/fuzz/FuzzParse"

func FuzzParse(f *testing.F) {
	for _, seed := range corpusSeeds(f) {
		f.Add(seed)
	}
	for _, kind := range []string{"good", "bad"} {
		for _, name := range cases(f, kind) {
			data, err := os.ReadFile(filepath.Join(testdata, kind, name, "Runfile"))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz", data)
		if err != nil {
			checkErr(t, err)
			if file != nil {
				t.Fatal("Parse returned a File and an error")
			}
			return
		}
		checkRoundTrip(t, file)
		checkSameMeaning(t, file)

		// Resolve with a value for every ARG: it may refuse the values,
		// but only with positioned errors; what it returns formats back.
		args := map[string]string{}
		for _, a := range file.Args {
			args[a.Name] = "/fuzz"
		}
		r, err := file.Resolve(args)
		if err != nil {
			checkErr(t, err)
			return
		}
		if len(r.Deferred) != 0 || len(r.Pending) != 0 {
			t.Fatalf("Resolve left Deferred %q, Pending %+v", r.Deferred, r.Pending)
		}
		text := r.Format()
		g, err := Parse("fuzz", []byte(text))
		if err != nil {
			t.Fatalf("Parse(Format(Resolve(f))): %v\n%s", err, text)
		}
		if again := g.Format(); again != text {
			t.Fatalf("Format(Parse(Format(r))) differs\n--- first:\n%s\n--- second:\n%s", text, again)
		}
	})
}

// checkSameMeaning asserts that f and Parse(f.Format()) resolve alike: the
// Pending lines Format keeps as written must mean what they meant in place.
func checkSameMeaning(t testing.TB, f *File) {
	t.Helper()
	g, err := Parse("formatted", []byte(f.Format()))
	if err != nil {
		t.Fatal(err)
	}
	for _, value := range []string{"/v", "2", "rel", "1G"} {
		args := map[string]string{}
		for _, n := range f.Deferred {
			args[n] = value
		}
		r1, err1 := f.Resolve(args)
		r2, err2 := g.Resolve(args)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("with %q: Resolve(f): %v; Resolve(Parse(Format(f))): %v\n--- formatted:\n%s", value, err1, err2, f.Format())
		}
		if err1 == nil && !reflect.DeepEqual(comparable(t, r1), comparable(t, r2)) {
			t.Fatalf("with %q, f and Parse(Format(f)) resolve differently\n--- formatted:\n%s\n--- f:\n%s\n--- again:\n%s",
				value, f.Format(), marshal(t, comparable(t, r1)), marshal(t, comparable(t, r2)))
		}
	}
}

// TestFormatKeepsMeaning builds Runfiles from fragments that mix literal
// lines with lines waiting for ARGs, and checks Format against them.
func TestFormatKeepsMeaning(t *testing.T) {
	args := []string{"ARG X", "ARG N=5", "ARG M", "ARG Z=1G"}
	fragments := []string{
		"ARG Y=${X}/y", `ARG W="a b"`, "ARG P=${M:-3} Q=${P}",
		"ENV E=${X}", "ENV E=/lit", `ENV F=${E}/f G="${Y} q"`, `ENV E "legacy ${Z}"`, "ENV M=${N}", "ENV H=${M}",
		`LABEL a=${X} b="c d"`, `LABEL "k.x"=v`, "LABEL m=${M}",
		"WORKDIR /w/${X}", `WORKDIR "/w d"`, "WORKDIR /w/${E}",
		"USER ${N}", "USER 1000:${M}", "USER 7",
		"INPUT in1 /i/${X}", `INPUT in2 "/i 2"`, "INPUT i${N}x /ix", "INPUT in3 ${E}/in",
		"OUTPUT /o/${E}", "OUTPUT /o2", "OUTPUT ${H}/o3",
		"SCRATCH /s ${Z}", "SCRATCH /s2 2G", "SCRATCH /s3 ${M}",
		"VOLUME v /v/${X}", "VOLUME v${M} /vm",
		"LIMIT cpus=${N} memory=1G", "LIMIT memory=${Z}", "LIMIT pids=10 timeout=1h", "LIMIT cpus=0.5",
		"LIMIT cpus=${M} pids=${M}", "LIMIT timeout=${M}s",
		`CMD ["run", "${X}"]`, "RUN echo ${X}", "ENTRYPOINT /bin/sh",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	parsed := 0
	for range 3000 {
		before := rng.IntN(len(args) + 1)
		lines := append([]string{}, args[:before]...)
		lines = append(lines, "FROM busybox@"+digest)
		lines = append(lines, args[before:]...)
		for _, i := range rng.Perm(len(fragments))[:1+rng.IntN(8)] {
			lines = append(lines, fragments[i])
		}
		f, err := Parse("gen", []byte(strings.Join(lines, "\n")+"\n"))
		if err != nil {
			continue
		}
		parsed++
		checkRoundTrip(t, f)
		checkSameMeaning(t, f)
	}
	t.Logf("%d of 3000 generated Runfiles parse", parsed)
	if parsed < 1000 {
		t.Errorf("only %d of 3000 generated Runfiles parse; the test checks too little", parsed)
	}
}

// corpusSeeds reads files in Go's corpus format ("go test fuzz v1" then one
// []byte("...") line).
func corpusSeeds(t testing.TB) [][]byte {
	t.Helper()
	entries, err := os.ReadDir(fuzzCorpus)
	if err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(fuzzCorpus, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a one-value corpus file", e.Name())
		}
		lit, ok := strings.CutPrefix(strings.TrimSpace(lines[1]), "[]byte(")
		lit, ok2 := strings.CutSuffix(lit, ")")
		s, err := strconv.Unquote(lit)
		if !ok || !ok2 || err != nil {
			t.Fatalf("%s: not a []byte value: %s", e.Name(), lines[1])
		}
		seeds = append(seeds, []byte(s))
	}
	return seeds
}
