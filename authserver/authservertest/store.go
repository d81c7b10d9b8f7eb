// Package authservertest is the contract every implementation of
// authserver.Store must pass: the SQLite and PostgreSQL stores run it, and
// any other database must run it before the authorization server may use
// it.
package authservertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
)

// Opener returns a fresh, empty store and the id of one user that exists in
// it (codes, grants and consents refer to users).
type Opener func(t *testing.T) (authserver.Store, string)

// Run runs the whole contract against stores made by open.
func Run(t *testing.T, open Opener) {
	for name, test := range map[string]func(*testing.T, Opener){
		"Clients":                             testClients,
		"CodeRedeemedOnceUnderConcurrency":    testCodeRedeemedOnceUnderConcurrency,
		"RefreshRotationUnderConcurrency":     testRefreshRotationUnderConcurrency,
		"RefreshRules":                        testRefreshRules,
		"RefreshTokenKeepsItsDPoPKey":         testRefreshTokenKeepsItsDPoPKey,
		"DeleteClientRevokesItsTokens":        testDeleteClientRevokesItsTokens,
		"Consents":                            testConsents,
		"ListAndRevokeUserGrants":             testListAndRevokeUserGrants,
		"DeleteAccount":                       testDeleteAccount,
		"MarkAccessTokensUsed":                testMarkAccessTokensUsed,
		"SigningKeys":                         testSigningKeys,
		"CountEvent":                          testCountEvent,
		"PurgeExpired":                        testPurgeExpired,
		"SignInSessions":                      testSignInSessions,
		"MachineClients":                      testMachineClients,
		"MachineClientsBoundUnderConcurrency": testMachineClientsBoundUnderConcurrency,
		"UseOnceUnderConcurrency":             testUseOnceUnderConcurrency,
		"IdentityProviders":                   testIdentityProviders,
	} {
		t.Run(name, func(t *testing.T) { test(t, open) })
	}
}

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// Each test below is one clause of the contract; the names say which.

func testClients(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _ := open(t)
	c := &authserver.Client{
		ID: "c1", Kind: authserver.ClientDynamic, Name: "Editor", SecretHash: "h",
		RedirectURIs: []string{"http://127.0.0.1/cb"}, AuthMethod: authserver.AuthClientSecretBasic,
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "entries:read",
		Contacts: []string{"a@example.com"}, RegisteredFrom: "127.0.0.1", CreatedAt: t0,
	}
	if err := db.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateClient(ctx, c); epicme.ErrorCode(err) != epicme.ECONFLICT {
		t.Fatalf("duplicate client: got %v, want ECONFLICT", err)
	}
	got, err := db.ClientByID(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Editor" || got.RedirectURIs[0] != "http://127.0.0.1/cb" || got.GrantTypes[1] != "refresh_token" ||
		!got.CreatedAt.Equal(t0) || !got.UsedAt.IsZero() || got.Contacts[0] != "a@example.com" {
		t.Fatalf("client read back differs: %+v", got)
	}
	if _, err := db.ClientByID(ctx, "nope"); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("missing client: got %v", err)
	}
	old := *c
	old.ID, old.CreatedAt = "c0", t0.Add(-48*time.Hour)
	if err := db.CreateClient(ctx, &old); err != nil {
		t.Fatal(err)
	}
	used := old
	used.ID = "c-used"
	if err := db.CreateClient(ctx, &used); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkClientUsed(ctx, "c-used", t0); err != nil {
		t.Fatal(err)
	}
	list, err := db.ListClients(ctx)
	if err != nil || len(list) != 3 || list[0].ID != "c-used" && list[0].ID != "c0" {
		t.Fatalf("ListClients = %v, %v", list, err)
	}
	if n, err := db.CountDynamicClients(ctx); err != nil || n != 3 {
		t.Fatalf("CountDynamicClients = %d, %v", n, err)
	}
	n, err := db.DeleteUnusedDynamicClients(ctx, t0.Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("DeleteUnusedDynamicClients = %d, %v; want only the old unused one", n, err)
	}
	if _, err := db.ClientByID(ctx, "c-used"); err != nil {
		t.Fatalf("a used client must survive: %v", err)
	}
	if err := db.DeleteClient(ctx, "c1", t0); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteClient(ctx, "c1", t0); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("deleting twice: got %v", err)
	}
}

// redeem stores a code and redeems it, returning the grant it made and the
// hash of its refresh token.
func redeem(t *testing.T, db authserver.Store, user string, code string) (*authserver.Grant, string) {
	t.Helper()
	ctx := context.Background()
	if err := db.CreateCode(ctx, &authserver.AuthCode{
		Hash: code, ClientID: "app", UserID: user, RedirectURI: "http://127.0.0.1/cb", CodeChallenge: "c",
		Resource: "http://127.0.0.1/mcp", Scope: "entries:read", CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute),
	}); err != nil {
		t.Fatal(err)
	}
	g := &authserver.Grant{ID: "g-" + code, ClientID: "app", UserID: user, Scope: "entries:read", Resource: "http://127.0.0.1/mcp", CreatedAt: t0, LastUsedAt: t0}
	rt := &authserver.RefreshToken{Hash: "rt-" + code, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	at := &authserver.AccessToken{JTI: "at-" + code, ExpiresAt: t0.Add(15 * time.Minute)}
	if err := db.RedeemCode(ctx, code, t0, g, rt, at); err != nil {
		t.Fatal(err)
	}
	return g, rt.Hash
}

func testCodeRedeemedOnceUnderConcurrency(t *testing.T, open Opener) {
	ctx := context.Background()
	db, user := open(t)
	if err := db.CreateCode(ctx, &authserver.AuthCode{
		Hash: "code", ClientID: "app", UserID: user, RedirectURI: "http://127.0.0.1/cb", RedirectGiven: true,
		CodeChallenge: "c", Resource: "r", Scope: "entries:read", CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute),
	}); err != nil {
		t.Fatal(err)
	}
	c, err := db.CodeByHash(ctx, "code")
	if err != nil || !c.RedirectGiven || !c.UsedAt.IsZero() || !c.ExpiresAt.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("CodeByHash = %+v, %v", c, err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := &authserver.Grant{ID: fmt.Sprint("g", i), ClientID: "app", UserID: user, Scope: "entries:read", Resource: "r", CreatedAt: t0, LastUsedAt: t0}
			rt := &authserver.RefreshToken{Hash: fmt.Sprint("rt", i), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
			at := &authserver.AccessToken{JTI: fmt.Sprint("at", i), ExpiresAt: t0.Add(time.Minute)}
			errs[i] = db.RedeemCode(ctx, "code", t0.Add(time.Second), g, rt, at)
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("redemptions %d and %d both succeeded", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no redemption succeeded")
	}
	for i, err := range errs {
		var reused *authserver.CodeReusedError
		if i != winner && (!errors.As(err, &reused) || reused.GrantID != fmt.Sprint("g", winner)) {
			t.Fatalf("redemption %d: got %v, want CodeReusedError naming g%d", i, err, winner)
		}
	}
	// An expired code cannot be redeemed.
	if err := db.CreateCode(ctx, &authserver.AuthCode{Hash: "old", ClientID: "app", UserID: user, RedirectURI: "x", CodeChallenge: "c", Resource: "r", Scope: "s", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	g := &authserver.Grant{ID: "gx", ClientID: "app", UserID: user, CreatedAt: t0, LastUsedAt: t0}
	if err := db.RedeemCode(ctx, "old", t0.Add(time.Hour), g, nil, &authserver.AccessToken{JTI: "x", ExpiresAt: t0}); !errors.Is(err, authserver.ErrInvalidGrant) {
		t.Fatalf("expired code: got %v", err)
	}
}

func testRefreshRotationUnderConcurrency(t *testing.T, open Opener) {
	for _, grace := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprint("grace=", grace), func(t *testing.T) {
			ctx := context.Background()
			db, user := open(t)
			g, rt := redeem(t, db, user, "code")
			const n = 12
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = db.RotateRefreshToken(ctx, &authserver.Rotation{
						OldHash: rt, ClientID: "app", Now: t0.Add(time.Second), Grace: grace,
						Next:   &authserver.RefreshToken{Hash: fmt.Sprint("next", i), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
						Access: &authserver.AccessToken{JTI: fmt.Sprint("at", i), ExpiresAt: t0.Add(15 * time.Minute)},
					})
				}()
			}
			wg.Wait()
			ok, reused := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, authserver.ErrRefreshReused):
					reused++
				case !errors.Is(err, authserver.ErrInvalidGrant):
					t.Fatalf("unexpected error %v", err)
				}
			}
			_, got, err := db.RefreshTokenByHash(ctx, rt)
			if grace == 0 {
				if ok != 1 || reused != 1 {
					t.Fatalf("without grace: %d succeeded and %d detected reuse; want exactly 1 and 1", ok, reused)
				}
				// The family is revoked: every token of the grant is gone,
				// and its access tokens are on the revocation list.
				if epicme.ErrorCode(err) != epicme.ENOTFOUND {
					t.Fatalf("the reused token should be gone, got %+v %v", got, err)
				}
				revoked, err := db.RevokedAccessTokens(ctx, time.Time{}, t0)
				if err != nil || len(revoked) != 2 { // the code's and the winner's
					t.Fatalf("revoked access tokens = %v, %v; want 2", revoked, err)
				}
				if r, _ := db.IsAccessTokenRevoked(ctx, "at-code"); !r {
					t.Fatal("the code's access token should be revoked")
				}
			} else {
				if ok != n {
					t.Fatalf("within the grace period every concurrent refresh should work; %d of %d did", ok, n)
				}
				if err != nil || got.Revoked() || !got.LastUsedAt.Equal(t0.Add(time.Second)) {
					t.Fatalf("grant after rotations: %+v, %v", got, err)
				}
				// One chain is live: each retry superseded the successors
				// issued before it (RFC 9700 §4.14.2).
				live := 0
				for i := range n {
					next, _, err := db.RefreshTokenByHash(ctx, fmt.Sprint("next", i))
					if err != nil {
						t.Fatal(err)
					}
					if next.RotatedAt.IsZero() {
						live++
					} else if next.RotatedAt.UnixNano() != authserver.SupersededAt {
						t.Fatalf("next%d rotated at %v, want live or superseded", i, next.RotatedAt)
					}
				}
				if live != 1 {
					t.Fatalf("%d live refresh tokens after %d retries within the grace period, want 1", live, n)
				}
			}
			_ = g
		})
	}
}

func testRefreshRules(t *testing.T, open Opener) {
	ctx := context.Background()
	db, user := open(t)
	_, rt := redeem(t, db, user, "code")
	rot := func(hash, client string, now time.Time, next string) error {
		_, err := db.RotateRefreshToken(ctx, &authserver.Rotation{
			OldHash: hash, ClientID: client, Now: now,
			Next:   &authserver.RefreshToken{Hash: next, CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
			Access: &authserver.AccessToken{JTI: "at-" + next, ExpiresAt: now.Add(time.Minute)},
		})
		return err
	}
	if err := rot(rt, "other", t0, "n1"); !errors.Is(err, authserver.ErrInvalidGrant) {
		t.Fatalf("another client's token: got %v", err)
	}
	if err := rot(rt, "app", t0.Add(2*time.Hour), "n1"); !errors.Is(err, authserver.ErrInvalidGrant) {
		t.Fatalf("expired token: got %v", err)
	}
	if err := rot("unknown", "app", t0, "n1"); !errors.Is(err, authserver.ErrInvalidGrant) {
		t.Fatalf("unknown token: got %v", err)
	}
	if err := rot(rt, "app", t0, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := rot("n1", "app", t0, "n2"); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeGrant(ctx, "g-code", t0); err != nil {
		t.Fatal(err)
	}
	if err := rot("n2", "app", t0, "n3"); !errors.Is(err, authserver.ErrInvalidGrant) {
		t.Fatalf("token of a revoked grant: got %v", err)
	}
	for _, jti := range []string{"at-code", "at-n1", "at-n2"} {
		if r, err := db.IsAccessTokenRevoked(ctx, jti); err != nil || !r {
			t.Fatalf("%s should be revoked with its grant (%v)", jti, err)
		}
	}
}

func testDeleteClientRevokesItsTokens(t *testing.T, open Opener) {
	ctx := context.Background()
	db, user := open(t)
	if err := db.CreateClient(ctx, &authserver.Client{ID: "app", Kind: authserver.ClientPreregistered, AuthMethod: "none", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	_, rt := redeem(t, db, user, "code")
	if err := db.SaveConsent(ctx, &authserver.Consent{UserID: user, ClientID: "app", Scope: "entries:read", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteClient(ctx, "app", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r, _ := db.IsAccessTokenRevoked(ctx, "at-code"); !r {
		t.Fatal("the client's access token should be revoked")
	}
	if _, _, err := db.RefreshTokenByHash(ctx, rt); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("the client's refresh token should be gone: %v", err)
	}
	if _, err := db.Consent(ctx, user, "app"); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("the client's consents should be gone: %v", err)
	}
	revs, err := db.RevokedAccessTokens(ctx, t0.Add(time.Minute), t0)
	if err != nil || len(revs) != 1 || revs[0].JTI != "at-code" || !revs[0].RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("RevokedAccessTokens = %+v, %v", revs, err)
	}
	if revs, _ := db.RevokedAccessTokens(ctx, t0.Add(2*time.Minute), t0); len(revs) != 0 {
		t.Fatalf("revocations since a later time: %v", revs)
	}
}

func testConsents(t *testing.T, open Opener) {
	ctx := context.Background()
	db, user := open(t)
	if _, err := db.Consent(ctx, user, "app"); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("no consent yet: %v", err)
	}
	for i, scope := range []string{"entries:read", "entries:read tags:read"} {
		at := t0.Add(time.Duration(i) * time.Minute)
		if err := db.SaveConsent(ctx, &authserver.Consent{UserID: user, ClientID: "app", Scope: scope, CreatedAt: at, UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := db.Consent(ctx, user, "app")
	if err != nil || c.Scope != "entries:read tags:read" || !c.CreatedAt.Equal(t0) || !c.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("Consent = %+v, %v", c, err)
	}
	if err := db.SaveConsent(ctx, &authserver.Consent{UserID: user, ClientID: "other", Scope: "user:read", CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	list, err := db.ListConsents(ctx, user)
	if err != nil || len(list) != 2 || list[0].ClientID != "other" {
		t.Fatalf("ListConsents = %v, %v", list, err)
	}
	redeem(t, db, user, "code")
	if err := db.DeleteConsent(ctx, user, "app", t0); err != nil {
		t.Fatal(err)
	}
	if r, _ := db.IsAccessTokenRevoked(ctx, "at-code"); !r {
		t.Fatal("withdrawing consent should revoke the client's tokens")
	}
	kept := &authserver.Client{ID: "kept", Kind: authserver.ClientPreregistered, Name: "App", AuthMethod: authserver.AuthNone,
		RedirectURIs: []string{"http://127.0.0.1/cb"}, CreatedAt: t0}
	if err := db.CreateClient(ctx, kept); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveConsent(ctx, &authserver.Consent{UserID: user, ClientID: "kept", Scope: "user:read", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteConsent(ctx, user, "kept", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClientByID(ctx, "kept"); err != nil {
		t.Fatalf("withdrawing a consent keeps a client that acts for nobody: %v", err)
	}
}

func testListAndRevokeUserGrants(t *testing.T, open Opener) {
	ctx := context.Background()
	db, user := open(t)
	redeem(t, db, user, "one")
	redeem(t, db, user, "two")
	list, err := db.ListGrants(ctx, authserver.GrantFilter{UserID: user})
	if err != nil || len(list) != 2 {
		t.Fatalf("ListGrants = %v, %v", list, err)
	}
	if g := list[0]; g.ClientID != "app" || g.UserID != user || g.Scope != "entries:read" || !g.CreatedAt.Equal(t0) || !g.LastUsedAt.Equal(t0) || g.Revoked() {
		t.Fatalf("grant %+v", g)
	}
	if list, _ := db.ListGrants(ctx, authserver.GrantFilter{ClientID: "other"}); len(list) != 0 {
		t.Fatalf("grants of another client: %v", list)
	}
	if err := db.RevokeGrant(ctx, "g-one", t0); err != nil {
		t.Fatal(err)
	}
	if list, _ := db.ListGrants(ctx, authserver.GrantFilter{UserID: user}); len(list) != 1 || list[0].ID != "g-two" {
		t.Fatalf("revoked grants are left out: %v", list)
	}
	if list, _ := db.ListGrants(ctx, authserver.GrantFilter{UserID: user, IncludeRevoked: true}); len(list) != 2 {
		t.Fatalf("IncludeRevoked lists them: %v", list)
	}
	if err := db.SaveConsent(ctx, &authserver.Consent{UserID: user, ClientID: "app", Scope: "entries:read", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeUserGrants(ctx, user, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r, _ := db.IsAccessTokenRevoked(ctx, "at-two"); !r {
		t.Fatal("RevokeUserGrants should revoke the access tokens")
	}
	if _, err := db.Consent(ctx, user, "app"); err != nil {
		t.Fatalf("RevokeUserGrants keeps consents: %v", err)
	}
}

func testMarkAccessTokensUsed(t *testing.T, open Opener) {
	ctx := context.Background()
	db, user := open(t)
	redeem(t, db, user, "code")
	later := t0.Add(10 * time.Minute)
	if err := db.MarkAccessTokensUsed(ctx, map[string]time.Time{"at-code": later, "at-unknown": later}); err != nil {
		t.Fatal(err)
	}
	// An older use does not move the last use back.
	if err := db.MarkAccessTokensUsed(ctx, map[string]time.Time{"at-code": t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	list, err := db.ListGrants(ctx, authserver.GrantFilter{UserID: user})
	if err != nil || len(list) != 1 || !list[0].LastUsedAt.Equal(later) || !list[0].CreatedAt.Equal(t0) {
		t.Fatalf("ListGrants = %+v, %v", list, err)
	}
}

func testDeleteAccount(t *testing.T, open Opener) {
	ctx := context.Background()
	db, user := open(t)
	redeem(t, db, user, "code")
	if err := db.SaveConsent(ctx, &authserver.Consent{UserID: user, ClientID: "app", Scope: "entries:read", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteAccount(ctx, user, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r, _ := db.IsAccessTokenRevoked(ctx, "at-code"); !r {
		t.Fatal("the deleted user's access token should stay on the revocation list")
	}
	if list, _ := db.ListGrants(ctx, authserver.GrantFilter{UserID: user, IncludeRevoked: true}); len(list) != 0 {
		t.Fatalf("grants of a deleted user: %v", list)
	}
	if list, _ := db.ListConsents(ctx, user); len(list) != 0 {
		t.Fatalf("consents of a deleted user: %v", list)
	}
	if err := db.DeleteAccount(ctx, user, t0); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("deleting twice: %v", err)
	}
}

func testSigningKeys(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _ := open(t)
	k := &authserver.SigningKey{KID: "k1", Alg: "ES256", PrivateSealed: []byte{1, 2, 3}, PublicJWK: []byte(`{"kid":"k1"}`), CreatedAt: t0, ActiveAt: t0}
	if err := db.CreateSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	k2 := *k
	k2.KID, k2.ActiveAt = "k2", t0.Add(time.Hour)
	if err := db.CreateSigningKey(ctx, &k2); err != nil {
		t.Fatal(err)
	}
	if err := db.RetireSigningKey(ctx, "k1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	keys, err := db.SigningKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].KID != "k1" || !keys[0].RetiredAt.Equal(t0.Add(time.Hour)) ||
		string(keys[0].PrivateSealed) != "\x01\x02\x03" || string(keys[1].PublicJWK) != `{"kid":"k1"}` || !keys[1].RetiredAt.IsZero() {
		t.Fatalf("SigningKeys = %+v, %v", keys, err)
	}
	if err := db.DeleteSigningKey(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := db.SigningKeys(ctx); len(keys) != 1 {
		t.Fatalf("after delete: %d keys", len(keys))
	}
}

func testCountEvent(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _ := open(t)
	for i := 1; i <= 3; i++ {
		n, err := db.CountEvent(ctx, "k", time.Hour, t0.Add(time.Duration(i)*time.Minute))
		if err != nil || n != i {
			t.Fatalf("event %d counted as %d, %v", i, n, err)
		}
	}
	if n, _ := db.CountEvent(ctx, "other", time.Hour, t0); n != 1 {
		t.Fatalf("another key shares the count: %d", n)
	}
	if n, _ := db.CountEvent(ctx, "k", time.Hour, t0.Add(time.Hour)); n != 1 {
		t.Fatalf("a new window should start at 1, got %d", n)
	}
	if err := db.ResetEvents(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.CountEvent(ctx, "k", time.Hour, t0.Add(time.Hour)); n != 1 {
		t.Fatalf("after reset: %d", n)
	}
}

func testPurgeExpired(t *testing.T, open Opener) {
	ctx := context.Background()
	db, user := open(t)
	_, rt := redeem(t, db, user, "code")
	if err := db.RevokeAccessToken(ctx, "lone", t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if err := db.PurgeExpired(ctx, t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r, _ := db.IsAccessTokenRevoked(ctx, "lone"); r {
		t.Fatal("an expired revocation should be purged")
	}
	if _, _, err := db.RefreshTokenByHash(ctx, rt); err != nil {
		t.Fatalf("an unexpired refresh token must survive: %v", err)
	}
	if err := db.PurgeExpired(ctx, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.RefreshTokenByHash(ctx, rt); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("an expired refresh token should be purged: %v", err)
	}
	if _, err := db.CodeByHash(ctx, "code"); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("an expired code should be purged: %v", err)
	}
}

func testSignInSessions(t *testing.T, open Opener) {
	ctx := context.Background()
	db, user := open(t)
	for _, h := range []string{"s1", "s2", "s3"} {
		if err := db.CreateSignInSession(ctx, &authserver.SignInSession{Hash: h, UserID: user, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.SignInSession(ctx, "s1")
	if err != nil || got.UserID != user || !got.CreatedAt.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("SignInSession = %+v, %v", got, err)
	}
	if _, err := db.SignInSession(ctx, "nosuch"); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("a missing session: %v, want ENOTFOUND", err)
	}
	if err := db.CreateSignInSession(ctx, &authserver.SignInSession{Hash: "s1", UserID: user, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err == nil {
		t.Fatal("a second session with the same hash was stored")
	}
	if err := db.DeleteSignInSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteSignInSession(ctx, "s1"); err != nil {
		t.Fatalf("ending an ended session: %v", err)
	}
	if _, err := db.SignInSession(ctx, "s1"); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("an ended session: %v, want ENOTFOUND", err)
	}
	if err := db.DeleteUserSignInSessions(ctx, user, "s3"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SignInSession(ctx, "s2"); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("a session of the user: %v, want ENOTFOUND", err)
	}
	if _, err := db.SignInSession(ctx, "s3"); err != nil {
		t.Fatalf("the kept session: %v", err)
	}
	if err := db.PurgeExpired(ctx, t0.Add(time.Hour-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SignInSession(ctx, "s3"); err != nil {
		t.Fatalf("an unexpired session was swept: %v", err)
	}
	if err := db.PurgeExpired(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SignInSession(ctx, "s3"); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("an expired session survived the sweep: %v", err)
	}
	if err := db.CreateSignInSession(ctx, &authserver.SignInSession{Hash: "s4", UserID: user, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteAccount(ctx, user, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SignInSession(ctx, "s4"); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("a session of a deleted user: %v, want ENOTFOUND", err)
	}
}

// testRefreshTokenKeepsItsDPoPKey: the key a refresh token is bound to
// (RFC 9449 §5) is stored with it, at redemption and at rotation alike.
func testRefreshTokenKeepsItsDPoPKey(t *testing.T, open Opener) {
	ctx := context.Background()
	db, user := open(t)
	if err := db.CreateCode(ctx, &authserver.AuthCode{
		Hash: "code", ClientID: "app", UserID: user, RedirectURI: "http://127.0.0.1/cb", CodeChallenge: "c",
		Resource: "r", Scope: "entries:read", CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute), DPoPJKT: "key-1",
	}); err != nil {
		t.Fatal(err)
	}
	if c, err := db.CodeByHash(ctx, "code"); err != nil || c.DPoPJKT != "key-1" {
		t.Fatalf("code: %+v, %v; want dpop_jkt key-1", c, err)
	}
	g := &authserver.Grant{ID: "g", ClientID: "app", UserID: user, Scope: "entries:read", Resource: "r", CreatedAt: t0, LastUsedAt: t0}
	rt := &authserver.RefreshToken{Hash: "rt", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), JKT: "key-1"}
	if err := db.RedeemCode(ctx, "code", t0, g, rt, &authserver.AccessToken{JTI: "at", ExpiresAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := db.RefreshTokenByHash(ctx, "rt"); err != nil || got.JKT != "key-1" {
		t.Fatalf("redeemed refresh token: %+v, %v; want jkt key-1", got, err)
	}
	if _, err := db.RotateRefreshToken(ctx, &authserver.Rotation{
		OldHash: "rt", ClientID: "app", Now: t0,
		Next:   &authserver.RefreshToken{Hash: "rt2", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), JKT: "key-1"},
		Access: &authserver.AccessToken{JTI: "at2", ExpiresAt: t0.Add(time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := db.RefreshTokenByHash(ctx, "rt2"); err != nil || got.JKT != "key-1" {
		t.Fatalf("rotated refresh token: %+v, %v; want jkt key-1", got, err)
	}
}

// testMachineClients: a machine client keeps the user it acts for and its
// keys; CreateGrant stores a grant with its access token, which revoking
// the grant revokes; deleting the user deletes their machine clients.
func testMachineClients(t *testing.T, open Opener) {
	ctx := context.Background()
	db, user := open(t)
	c := &authserver.Client{
		ID: "m1", Kind: authserver.ClientPreregistered, Name: "Nightly backup", AuthMethod: authserver.AuthPrivateKeyJWT,
		GrantTypes: []string{authserver.GrantClientCredentials}, Scope: "entries:read", ActsAs: user,
		JWKS: `{"keys":[]}`, JWKSURI: "https://keys.example/jwks.json", CreatedAt: t0,
	}
	if err := db.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := db.ClientByID(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ActsAs != user || got.JWKS != c.JWKS || got.JWKSURI != c.JWKSURI || got.AuthMethod != authserver.AuthPrivateKeyJWT || !got.Machine() || got.Public() {
		t.Fatalf("machine client read back differs: %+v", got)
	}
	g := &authserver.Grant{ID: "g-m1", ClientID: "m1", UserID: user, Scope: "entries:read", Resource: "https://mcp.example/mcp", CreatedAt: t0, LastUsedAt: t0}
	if err := db.CreateGrant(ctx, g, &authserver.AccessToken{JTI: "at-m1", GrantID: g.ID, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if list, err := db.ListGrants(ctx, authserver.GrantFilter{ClientID: "m1"}); err != nil || len(list) != 1 || list[0].Scope != "entries:read" {
		t.Fatalf("ListGrants after CreateGrant = %v, %v", list, err)
	}
	if err := db.RevokeGrant(ctx, g.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r, err := db.IsAccessTokenRevoked(ctx, "at-m1"); err != nil || !r {
		t.Fatalf("revoking the grant must revoke its access token: %v, %v", r, err)
	}
	if err := db.DeleteAccount(ctx, user, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClientByID(ctx, "m1"); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("a deleted user's machine client must go with them: %v", err)
	}
}

// testMachineClientsBoundUnderConcurrency: of concurrent creations for one
// user exactly max pass, each with its consent; max 0 bounds nothing;
// withdrawing the consent deletes the automation and frees its place; an
// unknown user is ENOTFOUND.
func testMachineClientsBoundUnderConcurrency(t *testing.T, open Opener) {
	ctx := context.Background()
	db, user := open(t)
	const n, max = 8, 3
	machine := func(id, actsAs string) *authserver.Client {
		return &authserver.Client{ID: id, Kind: authserver.ClientPreregistered, Name: "Automation", AuthMethod: authserver.AuthClientSecretBasic,
			GrantTypes: []string{authserver.GrantClientCredentials}, Scope: "entries:read", ActsAs: actsAs, CreatedAt: t0}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, refused := 0, 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.CreateMachineClient(ctx, machine(fmt.Sprintf("m%d", i), user), max)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
			case epicme.ErrorCode(err) == epicme.ECONFLICT:
				refused++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if created != max || refused != n-max {
		t.Fatalf("%d created, %d refused of %d concurrent creations, want %d and %d", created, refused, n, max, n-max)
	}
	consents, err := db.ListConsents(ctx, user)
	if err != nil || len(consents) != max {
		t.Fatalf("consents %v, %v: want one per machine client created", consents, err)
	}
	if consents[0].Scope != "entries:read" || !consents[0].CreatedAt.Equal(t0) {
		t.Fatalf("consent %+v", consents[0])
	}
	if err := db.CreateMachineClient(ctx, machine("unbounded", user), 0); err != nil {
		t.Fatalf("max 0 bounds nothing: %v", err)
	}
	bounded := func(id string) error {
		return db.CreateMachineClient(ctx, machine(id, user), max+1)
	}
	if err := bounded("over"); epicme.ErrorCode(err) != epicme.ECONFLICT {
		t.Fatalf("past the bound: %v, want ECONFLICT", err)
	}
	if err := db.DeleteConsent(ctx, user, consents[0].ClientID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClientByID(ctx, consents[0].ClientID); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("a machine client must go with its user's consent: %v", err)
	}
	if err := bounded("after-withdrawal"); err != nil {
		t.Fatalf("a withdrawn automation must free its place: %v", err)
	}
	err = db.CreateMachineClient(ctx, machine("nobody's", "no-such-user"), max)
	if epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("unknown user: %v, want ENOTFOUND", err)
	}
}

// testUseOnceUnderConcurrency: of concurrent uses of one key exactly one is
// first; the key can be used again once PurgeExpired has swept it after
// its expiry.
func testUseOnceUnderConcurrency(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _ := open(t)
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts, errs := 0, 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first, err := db.UseOnce(ctx, "k", t0.Add(time.Minute))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
				t.Error(err)
			}
			if first {
				firsts++
			}
		}()
	}
	wg.Wait()
	if firsts != 1 || errs != 0 {
		t.Fatalf("%d of %d concurrent uses were first (%d errors), want exactly 1", firsts, n, errs)
	}
	if first, err := db.UseOnce(ctx, "other", t0.Add(time.Minute)); err != nil || !first {
		t.Fatalf("another key: %v, %v", first, err)
	}
	if err := db.PurgeExpired(ctx, t0.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if first, _ := db.UseOnce(ctx, "k", t0.Add(time.Minute)); first {
		t.Fatal("a key must stay used until it expires")
	}
	if err := db.PurgeExpired(ctx, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if first, err := db.UseOnce(ctx, "k", t0.Add(3*time.Minute)); err != nil || !first {
		t.Fatalf("after expiry and purge the key is free: %v, %v", first, err)
	}
}

// testIdentityProviders: a trusted IdP reads back as saved, saving again
// replaces it, and deleting it revokes the grants of its users (and no
// one else's).
func testIdentityProviders(t *testing.T, open Opener) {
	ctx := context.Background()
	db, local := open(t)
	users, ok := db.(interface {
		EnsureUser(ctx context.Context, issuer, subject, email string) (*epicme.User, error)
	})
	if !ok {
		t.Skip("the store keeps no users")
	}
	const iss = "https://idp.example.com"
	p := &authserver.IdentityProvider{Issuer: iss, Clients: []string{"c1", "c2"}, Scope: "entries:read", CreatedAt: t0}
	if err := db.SaveIdentityProvider(ctx, p); err != nil {
		t.Fatal(err)
	}
	p2 := *p
	p2.JWKSURI, p2.Clients = "https://idp.example.com/keys", []string{"c3"}
	if err := db.SaveIdentityProvider(ctx, &p2); err != nil {
		t.Fatal(err)
	}
	got, err := db.IdentityProvider(ctx, iss)
	if err != nil || got.JWKSURI != p2.JWKSURI || len(got.Clients) != 1 || got.Clients[0] != "c3" || got.Scope != "entries:read" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("IdentityProvider = %+v, %v", got, err)
	}
	if list, err := db.ListIdentityProviders(ctx); err != nil || len(list) != 1 {
		t.Fatalf("ListIdentityProviders = %v, %v", list, err)
	}
	if _, err := db.IdentityProvider(ctx, "https://other.example"); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("unknown IdP: %v", err)
	}
	emp, err := users.EnsureUser(ctx, iss, "employee-1", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct{ id, user string }{{"g-emp", emp.ID}, {"g-local", local}} {
		gr := &authserver.Grant{ID: g.id, ClientID: "c3", UserID: g.user, Scope: "entries:read", Resource: "https://mcp.example/mcp", CreatedAt: t0, LastUsedAt: t0}
		if err := db.CreateGrant(ctx, gr, &authserver.AccessToken{JTI: "at-" + g.id, GrantID: g.id, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DeleteIdentityProvider(ctx, iss, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r, _ := db.IsAccessTokenRevoked(ctx, "at-g-emp"); !r {
		t.Fatal("removing an IdP must revoke its users' tokens")
	}
	if r, _ := db.IsAccessTokenRevoked(ctx, "at-g-local"); r {
		t.Fatal("removing an IdP revoked another user's token")
	}
	if err := db.DeleteIdentityProvider(ctx, iss, t0); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("deleting twice: %v", err)
	}
}
