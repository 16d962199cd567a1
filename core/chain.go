package core

import "time"

// ChainHead is the newest entry of a store's hash chain (runs, image events
// and config events): its sequence number and sha256, which commits to every
// entry before it. It is the payload that a signed head signs.
type ChainHead struct {
	Seq    int64  `json:"seq"`
	SHA256 string `json:"head"`
}

// ChainHeadPayloadType is the DSSE payload type of a signed chain head.
const ChainHeadPayloadType = "application/vnd.runprov.chain-head+json"

// SignedHead is a chain head signed with the site's sign_key.
type SignedHead struct {
	ChainHead
	KeyID    string    `json:"key_id"`
	Envelope []byte    `json:"envelope"` // DSSE envelope (JSON)
	SignedAt time.Time `json:"signed_at"`
}
