package mcpserver

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/epicme/epicme"
)

// stateTTL bounds how long a client may take to answer an input request.
const stateTTL = 10 * time.Minute

// roundTrip is what a tool remembers between the rounds of a multi
// round-trip request (MCP 2026-07-28, SEP-2322): the client echoes it back
// as requestState. It is signed, not encrypted: it holds nothing the client
// may not see (ids the client already knows), but the client must not be
// able to change it, or to replay it for another user, tool or argument set.
type roundTrip struct {
	// UserID is the user the state was issued to.
	UserID string `json:"u"`
	// ClientID is the OAuth client it was issued to: another client of the
	// same user, with other scopes, may not continue the round trip.
	ClientID string `json:"c,omitempty"`
	// Tool is the tool that issued it.
	Tool string `json:"t"`
	// Args is a hash of the call's arguments.
	Args string `json:"a"`
	// Target is the row the round trip is about: the entry create_entry made
	// on the first round, or the entry or tag a delete is confirming.
	Target int64 `json:"i"`
	// Expires is a Unix time.
	Expires int64 `json:"e"`
	// Nonce makes every state issued unique, so that using one up (see
	// useState) says nothing of another.
	Nonce string `json:"n,omitempty"`
}

// argsHash hashes a call's arguments. encoding/json writes map keys in
// sorted order, so equal argument objects hash equally.
func argsHash(arguments any) string {
	b, _ := json.Marshal(arguments)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// sealState returns the opaque requestState for rt: base64url(payload) "."
// base64url(HMAC-SHA256(secret, payload)) (RFC 2104).
func (s *Server) sealState(rt roundTrip) string {
	rt.Nonce = rand.Text()[:16]
	payload, _ := json.Marshal(rt)
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.stateMAC(p))
}

func (s *Server) stateMAC(payload string) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte("epicme requestState v1\n"))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// openState verifies a requestState echoed by the client and checks that it
// was issued to this user and client, for this tool and these arguments, and has not
// expired. Every failure is the same EINVALID error: a client learns nothing
// from which check failed.
func (s *Server) openState(state string, c *epicme.Caller, tool string, arguments any, now time.Time) (roundTrip, error) {
	bad := epicme.Invalid("requestState", "requestState is invalid or expired; call %s again without it", tool)
	p, sig, ok := strings.Cut(state, ".")
	if !ok || len(state) > 1024 {
		return roundTrip{}, bad
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.stateMAC(p)) {
		return roundTrip{}, bad
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return roundTrip{}, bad
	}
	var rt roundTrip
	if err := json.Unmarshal(payload, &rt); err != nil {
		return roundTrip{}, bad
	}
	if rt.UserID != c.User.ID || rt.ClientID != c.ClientID || rt.Tool != tool || rt.Args != argsHash(arguments) || now.Unix() > rt.Expires || rt.Target <= 0 {
		return roundTrip{}, bad
	}
	return rt, nil
}

// useState marks a requestState opened by openState as used, in the
// session store every instance shares, until it expires: a completed
// round trip cannot be completed again, here or on another instance (its
// HMAC proves it genuine, not unused). The key is the signed payload,
// which the HMAC fixes byte for byte.
func (s *Server) useState(ctx context.Context, state string, rt roundTrip, tool string) error {
	payload, _, _ := strings.Cut(state, ".")
	err := s.sessionStore.UseRequestState(ctx, payload, time.Unix(rt.Expires+1, 0))
	if epicme.ErrorCode(err) == epicme.ECONFLICT {
		return epicme.Invalid("requestState", "this requestState has already been used: its request is complete; call %s again without it", tool)
	}
	return err
}
