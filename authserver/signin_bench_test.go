package authserver_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
	"github.com/epicme/epicme/password"
)

// BenchmarkSignInUnknownEmailVersusWrongPassword measures a refused sign-in
// with the production Argon2id parameters, for an email that has no account
// and for a wrong password: the two should cost about the same, so that the
// time of the answer does not tell which emails exist. Compare the two
// ns/op figures.
func BenchmarkSignInUnknownEmailVersusWrongPassword(b *testing.B) {
	e := testserver.NewEnv(b, func(c *authserver.Config) { c.PasswordParams = password.DefaultParams })
	hash, err := password.Hash(testserver.Password)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.DB.CreateUser(context.Background(), epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "real@example.com", PasswordHash: hash}); err != nil {
		b.Fatal(err)
	}
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	br := e.Agent()
	page := br.Get(e.AuthzURL(c, ch, nil)).Body
	for _, bc := range []struct{ name, email string }{{"wrong-password", "real@example.com"}, {"unknown-email", "nobody@example.com"}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				// Past the backoff and the attempt window, so every
				// attempt reaches the password check.
				e.Clock.Advance(time.Hour)
				if r := br.SignIn(page, bc.email, "not the password"); r.Status != http.StatusUnauthorized {
					b.Fatalf("status %d", r.Status)
				}
			}
		})
	}
}
