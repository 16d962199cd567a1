package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/dsse"
	"github.com/runprov/runprov/drivers/keys"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/history"
)

var recordsBench = benchmark{
	name: "records",
	desc: "runprov run with and without --sign-key (paired, median difference; target <= 2 ms) and the signing work alone; verify --envelope --outputs of 10,000 output files vs sha256sum (target <= 1.2x)",
	run:  benchRecords,
}

func benchRecords(ctx context.Context, env *benchEnv) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (runc with a user namespace)")
	}
	if err := benchSignOverhead(ctx, env); err != nil {
		return err
	}
	return benchVerifyOutputs(ctx, env)
}

// benchSignOverhead alternates signed and unsigned runs of `true`, so that
// drift of the machine hits both alike, and reports the median of the
// paired differences; and times the signing work in process.
func benchSignOverhead(ctx context.Context, env *benchEnv) error {
	reps := env.reps(31)
	lay := filepath.Join(env.dir, "layout")
	digest, err := writeBusyboxLayout(lay)
	if err != nil {
		return err
	}
	store := filepath.Join(env.dir, "store")
	rp := func(args ...string) (string, error) {
		return env.cmd(ctx, nil, env.runprov, append([]string{"--store", store, "-q"}, args...)...)
	}
	if _, err := rp("init"); err != nil {
		return err
	}
	if _, err := rp("image", "import", lay); err != nil {
		return err
	}
	key := filepath.Join(env.dir, "analyst")
	if _, err := rp("key", "generate", "--out", key); err != nil {
		return err
	}
	rf := filepath.Join(env.dir, "Runfile")
	os.WriteFile(rf, []byte("FROM busybox@"+digest+"\nCMD [\"/bin/sh\", \"-c\", \"echo x > /safe_outputs/x\"]\n"), 0o644)
	out, err := rp("add", rf)
	if err != nil {
		return err
	}
	commit := strings.TrimSpace(out)
	if _, err := rp("run", commit, "--no-input"); err != nil { // unpacks the rootfs once
		return err
	}
	run := func(args ...string) (time.Duration, error) {
		d, _, err := timeRusage(ctx, env.runprov, append([]string{"--store", store, "-q", "run", commit, "--no-input"}, args...)...)
		return d, err
	}
	var plain, signed, diff sample
	for i := range reps {
		// Alternate which goes first, so that what one run leaves behind
		// (a WAL checkpoint, runc's cleanup) weighs on both alike.
		var d0, d1 time.Duration
		var err0, err1 error
		if i%2 == 0 {
			d0, err0 = run()
			d1, err1 = run("--sign-key", key+".key")
		} else {
			d1, err1 = run("--sign-key", key+".key")
			d0, err0 = run()
		}
		if err0 != nil || err1 != nil {
			return fmt.Errorf("%v %v", err0, err1)
		}
		plain, signed, diff = append(plain, d0), append(signed, d1), append(diff, d1-d0)
	}
	work, err := signWork(ctx, store, key+".key", env.reps(50))
	if err != nil {
		return err
	}
	env.row("runprov run (unsigned)", plain)
	env.row("runprov run --sign-key (Ed25519)", signed)
	env.ratio("signed / unsigned", signed, plain)
	fmt.Fprintf(env.out, "  %-44s %10s   (paired; target <= 2ms)\n", "signing overhead, median of differences", diff.median().Round(time.Microsecond))
	env.row("signing work in process (read, sign, store)", work)
	return nil
}

// signWork times what a signed run adds: read the run, derive and encode
// its statement, sign it, store the envelope.
func signWork(ctx context.Context, store, keyFile string, reps int) (sample, error) {
	st, err := sqlite.Open(ctx, store, sqlite.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	priv, err := keys.ParsePrivate(data, nil)
	if err != nil {
		return nil, err
	}
	id, _ := keys.ID(priv.Public())
	runs, err := st.Runs(ctx, core.RunFilter{Limit: 1})
	if err != nil || len(runs) == 0 {
		return nil, fmt.Errorf("no run to sign: %v", err)
	}
	var s sample
	for range reps {
		d, err := timeIt(func() error {
			r, err := st.Run(ctx, runs[0].ID)
			if err != nil {
				return err
			}
			stmt, err := history.InToto(&history.Record{Run: *r}, history.ExportOptions{Version: "bench"})
			if err != nil {
				return err
			}
			payload, err := history.StatementJSON(stmt)
			if err != nil {
				return err
			}
			env, err := dsse.Sign(ctx, priv, dsse.PayloadTypeInToto, payload)
			if err != nil {
				return err
			}
			b, _ := json.Marshal(env)
			return st.PutRunSignature(ctx, &core.RunSignature{RunID: r.ID, KeyID: id, KeyKind: core.SignerPersonal, SignedAt: time.Now(), Envelope: b})
		})
		if err != nil {
			return nil, err
		}
		s = append(s, d)
	}
	return s, nil
}

// benchVerifyOutputs signs a synthetic record of 10,000 output files of
// 8 KiB and checks them with verify --envelope --outputs, against
// sha256sum of the same files (warm page cache for both).
func benchVerifyOutputs(ctx context.Context, env *benchEnv) error {
	const nFiles, size = 10000, 8 << 10
	dir := filepath.Join(env.dir, "outputs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, size)
	st := &history.Statement{Type: history.StatementType, PredicateType: history.SLSAPredicateType}
	st.Predicate.BuildDefinition.BuildType = history.BuildType
	st.Predicate.BuildDefinition.InternalParameters = map[string]any{
		"mounts": []core.RunMount{{Kind: core.MountOutput, Source: dir, Target: "/safe_outputs"}},
	}
	st.Predicate.RunDetails.Builder.ID = history.BuilderID
	var files []string
	for i := range nFiles {
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		name := fmt.Sprintf("f%05d.dat", i)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			return err
		}
		sum := sha256.Sum256(buf)
		st.Subject = append(st.Subject, history.ResourceDescriptor{Name: "/safe_outputs/" + name, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}})
		files = append(files, p)
	}
	kp, err := keys.WriteKeyPair(filepath.Join(env.dir, "site"), keys.Ed25519, nil)
	if err != nil {
		return err
	}
	data, _ := os.ReadFile(kp.PrivatePath)
	priv, err := keys.ParsePrivate(data, nil)
	if err != nil {
		return err
	}
	payload, err := history.StatementJSON(st)
	if err != nil {
		return err
	}
	e, err := dsse.Sign(ctx, priv, dsse.PayloadTypeInToto, payload)
	if err != nil {
		return err
	}
	envFile := filepath.Join(env.dir, "outputs.dsse.json")
	b, _ := json.Marshal(e)
	if err := os.WriteFile(envFile, b, 0o644); err != nil {
		return err
	}
	verify := []string{"-q", "verify", "--envelope", envFile, "--key", kp.PublicPath, "--outputs", dir}
	if _, err := env.cmd(ctx, nil, env.runprov, verify...); err != nil { // warm, and must verify
		return err
	}
	var shaS, verS sample
	for range env.reps(9) {
		d, _, err := timeRusage(ctx, "sha256sum", files...)
		if err != nil {
			return err
		}
		shaS = append(shaS, d)
		if d, _, err = timeRusage(ctx, env.runprov, verify...); err != nil {
			return err
		}
		verS = append(verS, d)
	}
	env.row("sha256sum, 10,000 files of 8 KiB", shaS)
	env.row("runprov verify --envelope --outputs", verS)
	env.ratio("verify / sha256sum (target <= 1.2x)", verS, shaS)
	return nil
}
