package authserver_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/authserver/internal/testserver"
)

// jwtClaims decodes the payload of a compact JWT without checking it.
func jwtClaims(t *testing.T, tok string) (jti string, exp time.Time) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		JTI string `json:"jti"`
		Exp int64  `json:"exp"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.JTI, time.Unix(c.Exp, 0)
}

// TestRule_RevocationCommittedOutOfOrderStillRefused: revocations carry the
// time their request began, so two revocations can commit in the opposite
// order of their timestamps. The one with the earlier stamp, committed after
// the in-process verifier already synced past it, must still be refused.
func TestRule_RevocationCommittedOutOfOrderStillRefused(t *testing.T) {
	e := testserver.NewEnv(t)
	ctx := context.Background()
	c := e.PublicClient()
	first := e.Tokens(c, "entries:read")["access_token"].(string)
	second := e.Tokens(c, "entries:read")["access_token"].(string)
	jti1, exp1 := jwtClaims(t, first)
	jti2, exp2 := jwtClaims(t, second)
	if err := e.Verify(first); err != nil {
		t.Fatalf("fresh token refused: %v", err)
	}

	t0 := e.Clock.Now()
	// The later-stamped revocation commits first, and a sync moves the
	// watermark to it.
	if err := e.DB.RevokeAccessToken(ctx, jti2, exp2, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(3 * time.Second)
	if err := e.Verify(second); err == nil {
		t.Fatal("the token revoked first is still accepted")
	}
	// Then the earlier-stamped one commits.
	if err := e.DB.RevokeAccessToken(ctx, jti1, exp1, t0.Add(1*time.Second)); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(2 * time.Second)
	if err := e.Verify(first); err == nil {
		t.Fatal("a revocation that committed after a later-stamped one is never seen by the verifier")
	}
}
