package authservertest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/epicme/epicme/authserver"
)

// Bench runs the authorization server's storage benchmarks on db, in which
// user exists: the store's share of each OAuth operation, as the server
// calls it. Each store runs the same set, so their figures compare (the
// authserver package's own benchmarks measure the operations over HTTP).
//
//   - RegisterClient: Dynamic Client Registration (RFC 7591): the source's
//     registration window counted, the dynamic clients counted, the client
//     stored.
//   - CodeIssueRedeem: the authorization endpoint stores a code (RFC 6749
//     §4.1.2), the token endpoint reads the client and the code and redeems
//     it into a grant, a refresh token and an access-token record, then
//     marks the client used (§4.1.3).
//   - RefreshRotation: a refresh_token grant (RFC 6749 §6, rotated as
//     OAuth 2.1 §4.3.1 requires): the client and the token read, the token
//     replaced and the new access token recorded; RefreshRotationParallel
//     rotates many families at once.
//   - IntrospectRefreshToken: introspection (RFC 7662) of a refresh token,
//     which is looked up with its grant.
//   - AccessTokenRevoked: the revocation check of one access token made
//     when the revocation feed is down (the verifier otherwise answers from
//     memory).
//   - CountEvent: one sign-in attempt counted in its rate-limit window.
func Bench(b *testing.B, db authserver.Store, user string) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	// Keys unique across runs of a benchmark (b.Loop runs it more than once
	// with growing counts).
	var seq atomic.Int64
	next := func(kind string) string { return fmt.Sprintf("bench-%s-%d-%d", kind, now.UnixNano(), seq.Add(1)) }

	const clientID = "bench-app"
	if _, err := db.ClientByID(ctx, clientID); err != nil {
		if err := db.CreateClient(ctx, &authserver.Client{
			ID: clientID, Kind: authserver.ClientPreregistered, Name: "Benchmark", AuthMethod: authserver.AuthNone,
			RedirectURIs: []string{"http://127.0.0.1/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
			Scope: "entries:read entries:write", CreatedAt: now,
		}); err != nil {
			b.Fatal(err)
		}
	}
	// issue stores a code and redeems it, as CodeIssueRedeem does, and
	// returns the refresh token's hash.
	issue := func() (string, error) {
		code := next("code")
		if err := db.CreateCode(ctx, &authserver.AuthCode{
			Hash: code, ClientID: clientID, UserID: user, RedirectURI: "http://127.0.0.1/cb", RedirectGiven: true,
			CodeChallenge: "c", Resource: "http://127.0.0.1/mcp", Scope: "entries:read", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute),
		}); err != nil {
			return "", err
		}
		if _, err := db.ClientByID(ctx, clientID); err != nil {
			return "", err
		}
		if _, err := db.CodeByHash(ctx, code); err != nil {
			return "", err
		}
		g := &authserver.Grant{ID: next("grant"), ClientID: clientID, UserID: user, Scope: "entries:read", Resource: "http://127.0.0.1/mcp", CreatedAt: now, LastUsedAt: now}
		rt := &authserver.RefreshToken{Hash: next("rt"), CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
		at := &authserver.AccessToken{JTI: next("at"), ExpiresAt: now.Add(15 * time.Minute)}
		if err := db.RedeemCode(ctx, code, now, g, rt, at); err != nil {
			return "", err
		}
		return rt.Hash, db.MarkClientUsed(ctx, clientID, now)
	}
	mustIssue := func(b *testing.B) string {
		rt, err := issue()
		if err != nil {
			b.Fatal(err)
		}
		return rt
	}
	rotate := func(rt string) (string, error) {
		if _, err := db.ClientByID(ctx, clientID); err != nil {
			return "", err
		}
		if _, _, err := db.RefreshTokenByHash(ctx, rt); err != nil {
			return "", err
		}
		nextRT := next("rt")
		_, err := db.RotateRefreshToken(ctx, &authserver.Rotation{
			OldHash: rt, ClientID: clientID, Now: now,
			Next:   &authserver.RefreshToken{Hash: nextRT, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)},
			Access: &authserver.AccessToken{JTI: next("at"), ExpiresAt: now.Add(15 * time.Minute)},
		})
		return nextRT, err
	}

	b.Run("RegisterClient", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := db.CountEvent(ctx, "register:192.0.2.1", time.Hour, now); err != nil {
				b.Fatal(err)
			}
			if _, err := db.CountDynamicClients(ctx); err != nil {
				b.Fatal(err)
			}
			if err := db.CreateClient(ctx, &authserver.Client{
				ID: next("client"), Kind: authserver.ClientDynamic, Name: "Editor", AuthMethod: authserver.AuthNone,
				RedirectURIs: []string{"http://127.0.0.1/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
				Scope: "entries:read", RegisteredFrom: "192.0.2.1", CreatedAt: now,
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CodeIssueRedeem", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mustIssue(b)
		}
	})
	b.Run("RefreshRotation", func(b *testing.B) {
		rt := mustIssue(b)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if rt, err = rotate(rt); err != nil {
				b.Fatal(err)
			}
		}
	})
	// RefreshRotationParallel: as many families as goroutines (GOMAXPROCS),
	// each rotating its own, through the store's connection pool.
	b.Run("RefreshRotationParallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			rt, err := issue()
			if err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				if rt, err = rotate(rt); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("IntrospectRefreshToken", func(b *testing.B) {
		var rts []string
		for range 16 {
			rts = append(rts, mustIssue(b))
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, g, err := db.RefreshTokenByHash(ctx, rts[i%len(rts)]); err != nil || g.UserID != user {
				b.Fatal(err)
			}
		}
	})
	b.Run("AccessTokenRevoked", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if revoked, err := db.IsAccessTokenRevoked(ctx, fmt.Sprint("bench-jti-", i%64)); err != nil || revoked {
				b.Fatal(revoked, err)
			}
		}
	})
	b.Run("CountEvent", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := db.CountEvent(ctx, fmt.Sprint("signin:bench-", i%64), 15*time.Minute, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
