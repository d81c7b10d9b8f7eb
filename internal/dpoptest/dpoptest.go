// Package dpoptest makes DPoP keys and proofs (RFC 9449 §4.2) for tests,
// signed with go-jose as a client library would sign them, so that the
// resource server's and the authorization server's tests present the same
// proofs.
package dpoptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Key is a client's DPoP key pair (P-256) and the JWK SHA-256 thumbprint
// of its public key (RFC 7638), the value of a bound token's cnf.jkt.
type Key struct {
	Priv *ecdsa.PrivateKey
	JKT  string
}

// NewKey makes a key.
func NewKey(t testing.TB) Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return Key{Priv: priv, JKT: base64.RawURLEncoding.EncodeToString(tp)}
}

// Proof signs a DPoP proof (typ dpop+jwt, ES256, the public key embedded as
// jwk) with claims; header values replace those of the protected header.
func (k Key) Proof(t testing.TB, claims map[string]any, header map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	for name, v := range header {
		opts = opts.WithHeader(name, v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.Priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
