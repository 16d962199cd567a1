package release

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/dsse"
	"github.com/runprov/runprov/drivers/keys"
	"github.com/runprov/runprov/drivers/spool"
)

// testKey signs with a fresh Ed25519 key, as the CLI's adapter does.
type testKey struct {
	priv crypto.Signer
	id   string
	pub  []byte
}

func newTestKey(t *testing.T) *testKey {
	priv, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := keys.ID(priv.Public())
	pub, _ := keys.MarshalPublic(priv.Public())
	return &testKey{priv, id, pub}
}

func (k *testKey) KeyID() string     { return k.id }
func (k *testKey) PublicPEM() []byte { return k.pub }
func (k *testKey) Sign(ctx context.Context, pt string, payload []byte) ([]byte, error) {
	env, err := dsse.Sign(ctx, k.priv, pt, payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(env)
}

type testVerifier struct{}

func (testVerifier) Verify(ctx context.Context, envelope []byte, pt string, trusted [][]byte) (string, []byte, error) {
	env, err := dsse.Decode(envelope)
	if err != nil {
		return "", nil, err
	}
	var pubs []crypto.PublicKey
	for _, p := range trusted {
		k, err := keys.ParsePublic(p)
		if err != nil {
			return "", nil, err
		}
		pubs = append(pubs, k)
	}
	return dsse.Verify(ctx, env, pt, pubs)
}

func (testVerifier) Open(envelope []byte) ([]byte, []string, error) {
	env, err := dsse.Decode(envelope)
	if err != nil {
		return nil, nil, err
	}
	p, err := env.DecodeB64Payload()
	return p, nil, err
}

func (testVerifier) KeyID(pub []byte) (string, error) {
	k, err := keys.ParsePublic(pub)
	if err != nil {
		return "", err
	}
	return keys.ID(k)
}

// airlockWithRequest is a spool with one request, by uid 1000, of a run
// with a moderate table and a high file, and two checkers' keys.
func airlockWithRequest(t *testing.T) (*Release, *Request, *testKey, *testKey) {
	t.Helper()
	ctx := context.Background()
	c1, c2 := newTestKey(t), newTestKey(t)
	var sp Spool = &spool.Spool{Dir: t.TempDir()}
	if os.Getuid() != 0 {
		// The people here are uids 1000 to 1002; files a user other than
		// root writes would be refused as theirs.
		sp = anyOwner{sp.(*spool.Spool)}
	}
	r := &Release{Spool: sp, Verifier: testVerifier{}, Rules: (&core.Policy{}).Release(),
		Checkers: map[string][]byte{c1.id: c1.pub, c2.id: c2.pub}}
	content := map[string]string{"t.csv": "region,n\nnorth,12\n", "raw.csv": "x\n1\n"}
	run := &core.Run{ID: strings.Repeat("ab", 16), Outputs: []core.FileRecord{
		{Name: "/out", Path: "t.csv", Size: int64(len(content["t.csv"])), SHA256: spool.Sum([]byte(content["t.csv"])), Sensitivity: core.SensitivityModerate},
		{Name: "/secret", Path: "raw.csv", Size: 4, SHA256: spool.Sum([]byte(content["raw.csv"]))},
	}}
	stmt, _ := json.Marshal(map[string]any{"subject": []Subject{{Name: "/out/t.csv", Digest: map[string]string{"sha256": run.Outputs[0].SHA256}}}})
	in := RequestInput{Note: "n", Actor: Person{User: "ana", UID: 1000}, Run: RunInput{Run: run, Statement: stmt,
		Open: func(f core.FileRecord) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(content[f.Path])), nil
		}}}
	if _, err := r.NewRequest(ctx, RequestInput{Paths: []string{"raw.csv"}, Run: in.Run, Actor: in.Actor}); !errors.Is(err, core.ErrReleaseRefused) || !strings.Contains(err.Error(), "high sensitivity") {
		t.Fatalf("a high file: %v", err)
	}
	out, err := r.NewRequest(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return r, &out.Request, c1, c2
}

// TestReviewAndExport: refusals of votes and exports, blind review, and an
// export of the approved file with a statement naming it.
func TestReviewAndExport(t *testing.T) {
	ctx := context.Background()
	r, req, c1, c2 := airlockWithRequest(t)
	vote := func(k *testKey, uid int, d string) error {
		_, err := r.Review(ctx, req.ID[:6], ReviewInput{Actor: Person{User: "c", UID: uid}, Signer: k, Decision: d, Note: "x"})
		return err
	}
	if err := vote(newTestKey(t), 1001, Approve); !errors.Is(err, core.ErrReleaseRefused) || !strings.Contains(err.Error(), "not an output checker") {
		t.Errorf("a stray key: %v", err)
	}
	if err := vote(c1, 1000, Approve); !errors.Is(err, core.ErrReleaseRefused) || !strings.Contains(err.Error(), "may not vote") {
		t.Errorf("the requester's account: %v", err)
	}
	if err := vote(c1, 1001, Approve); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if _, err := r.Export(ctx, req.ID, ExportInput{Actor: Person{UID: 1002}, Signer: c2, Dir: dir}); !errors.Is(err, core.ErrReleaseRefused) || !strings.Contains(err.Error(), "1 of the 2") {
		t.Errorf("export with one approval: %v", err)
	}
	if v, err := r.Show(ctx, req.ID, Person{UID: 1002}); err != nil || len(v.Votes) != 0 || v.Hidden != 1 || v.Status != nil {
		t.Errorf("a checker who has not voted sees %+v (%v)", v, err)
	}
	if err := vote(c2, 1002, Approve); err != nil {
		t.Fatal(err)
	}
	if v, _ := r.Show(ctx, req.ID, Person{UID: 1002}); len(v.Votes) != 2 || v.Hidden != 0 || !v.Status[0].Released {
		t.Errorf("after voting: %+v", v)
	}
	r.RequireSigned = true
	if _, err := r.Export(ctx, req.ID, ExportInput{Actor: Person{UID: 1002}, Signer: c2, Dir: dir}); !errors.Is(err, core.ErrReleaseRefused) || !strings.Contains(err.Error(), "require_signed_records") {
		t.Errorf("an unsigned run under require_signed_records: %v", err)
	}
	r.RequireSigned = false
	ex, err := r.Export(ctx, req.ID, ExportInput{Actor: Person{UID: 1002}, Signer: c2, Dir: dir})
	if err != nil || len(ex.Released) != 1 {
		t.Fatalf("export: %+v %v", ex, err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "t.csv")); err != nil || spool.Sum(data) != req.Files[0].SHA256 {
		t.Errorf("the exported file: %v", err)
	}
	env, _ := os.ReadFile(filepath.Join(dir, EnvelopeFile))
	_, payload, err := testVerifier{}.Verify(ctx, bytes.TrimSpace(env), PayloadTypeInToto, [][]byte{c2.pub})
	if err != nil || !strings.Contains(string(payload), `"sha256":"`+req.Files[0].SHA256+`"`) {
		t.Errorf("the release statement: %v\n%s", err, payload)
	}
	if problems, err := r.Verify(ctx); err != nil || len(problems) != 0 {
		t.Errorf("verify: %v %v", problems, err)
	}
	if _, err := r.Export(ctx, req.ID, ExportInput{Actor: Person{UID: 1002}, Signer: c2, Dir: dir}); !errors.Is(err, core.ErrExists) {
		t.Errorf("export over an existing directory: %v", err)
	}
}

type anyOwner struct{ *spool.Spool }

func (anyOwner) Owner(context.Context, string, string) (int, error) { return 0, nil }
