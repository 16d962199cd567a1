package main

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/drivers/dsse"
	"github.com/runprov/runprov/drivers/keys"
	"github.com/runprov/runprov/drivers/sqlite"
)

// signKey reads the site policy's sign_key. The key is usually readable by
// the site's administrator only, which is why heads are signed by
// `runprov fsck --sign-head` (run by that administrator, e.g. from cron)
// and not on every write by whichever user ran runprov.
func signKey(p *core.Policy) (crypto.Signer, error) {
	if p == nil || p.SignKey == "" {
		return nil, advise(fmt.Errorf("sign the chain head: %w: the site policy names no sign_key", core.ErrInvalid), adviceNoSiteSignKey, "")
	}
	data, err := os.ReadFile(p.SignKey)
	if err != nil {
		return nil, fmt.Errorf("read sign_key: %w", err)
	}
	priv, err := keys.ParsePrivate(data, nil)
	if err != nil {
		return nil, fmt.Errorf("read sign_key %s: %w", p.SignKey, err)
	}
	return priv, nil
}

// signChainHead signs the store's chain head and keeps the envelope in
// table chain_heads. It returns the signed head, Seq 0 for an empty chain.
func signChainHead(ctx context.Context, st *sqlite.Store, p *core.Policy) (core.SignedHead, error) {
	priv, err := signKey(p)
	if err != nil {
		return core.SignedHead{}, err
	}
	head, err := st.ChainHead(ctx)
	if err != nil || head.Seq == 0 {
		return core.SignedHead{}, err
	}
	payload, err := json.Marshal(head)
	if err != nil {
		return core.SignedHead{}, err
	}
	env, err := dsse.Sign(ctx, priv, core.ChainHeadPayloadType, payload)
	if err != nil {
		return core.SignedHead{}, fmt.Errorf("sign the chain head: %w", err)
	}
	id, err := keys.ID(priv.Public())
	if err != nil {
		return core.SignedHead{}, err
	}
	data, err := json.Marshal(env)
	if err != nil {
		return core.SignedHead{}, err
	}
	h := core.SignedHead{ChainHead: head, KeyID: id, Envelope: data, SignedAt: time.Now()}
	return h, st.PutSignedHead(ctx, h)
}

// checkSignedHeads verifies each signed head's envelope with the public
// half of the policy's sign_key and that it signs what its row says (the
// store's checker compares the rows with the chain). Without a readable
// sign_key the signatures cannot be checked; ok is false then.
func checkSignedHeads(ctx context.Context, st *sqlite.Store, p *core.Policy, report func(core.Problem)) (ok bool, err error) {
	heads, err := st.SignedHeads(ctx)
	if err != nil || len(heads) == 0 {
		return true, err
	}
	priv, err := signKey(p)
	if err != nil {
		return false, nil
	}
	trusted := []crypto.PublicKey{priv.Public()}
	for _, h := range heads {
		where := fmt.Sprintf("signed head %d", h.Seq)
		env, err := dsse.Decode(h.Envelope)
		if err != nil {
			report(core.Problem{Where: where, What: fmt.Sprintf("the envelope does not decode: %v", err)})
			continue
		}
		_, payload, err := dsse.Verify(ctx, env, core.ChainHeadPayloadType, trusted)
		if err != nil {
			report(core.Problem{Where: where, What: fmt.Sprintf("the signature does not verify with the site policy's sign_key: %v", err)})
			continue
		}
		var signed core.ChainHead
		if err := json.Unmarshal(payload, &signed); err != nil || signed != h.ChainHead {
			report(core.Problem{Where: where, What: fmt.Sprintf("the envelope signs entry %d %s, not the row's entry %d %s",
				signed.Seq, signed.SHA256, h.Seq, h.SHA256)})
		}
	}
	return true, nil
}
