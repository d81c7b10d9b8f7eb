package authserver_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
)

// TestRule_StoredSigningKeysStillLoad: a signing key stored at rest by an
// earlier release (PKCS #8 sealed with AES-256-GCM under the KEK's "signing
// keys" subkey, the kid as additional data, and a hand-written public JWK)
// loads, signs the access tokens, and is published unchanged. The token's
// ES256 signature is checked here with crypto/ecdsa over a hand-split
// compact JWS (RFC 7515 §7.1, RFC 7518 §3.4), not with the server's JOSE
// library.
func TestRule_StoredSigningKeysStillLoad(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const kid = "stored-key-1"
	enc := base64.RawURLEncoding.EncodeToString
	pt, _ := priv.PublicKey.Bytes()
	publicJWK := `{"kty":"EC","crv":"P-256","x":"` + enc(pt[1:33]) + `","y":"` + enc(pt[33:]) + `","use":"sig","alg":"ES256","kid":"` + kid + `"}`
	e := testserver.NewEnv(t, func(cfg *authserver.Config) {
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, cfg.KEK)
		m.Write([]byte("epicme authserver signing keys"))
		block, _ := aes.NewCipher(m.Sum(nil))
		aead, _ := cipher.NewGCM(block)
		nonce := make([]byte, aead.NonceSize())
		rand.Read(nonce)
		now := cfg.Now()
		err = cfg.Store.CreateSigningKey(context.Background(), &authserver.SigningKey{
			KID: kid, Alg: "ES256", PrivateSealed: aead.Seal(nonce, nonce, der, []byte(kid)),
			PublicJWK: []byte(publicJWK), CreatedAt: now, ActiveAt: now,
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	if jwks := e.Get(authserver.JWKSPath); !strings.Contains(jwks.Body, publicJWK) {
		t.Fatalf("the stored JWK is not published as stored: %s", jwks.Body)
	}
	tok, _ := e.Tokens(e.PublicClient(), "entries:read")["access_token"].(string)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	if err := json.Unmarshal(hb, &h); err != nil {
		t.Fatal(err)
	}
	if h["alg"] != "ES256" || h["typ"] != "at+jwt" || h["kid"] != kid {
		t.Fatalf("header %v", h)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(&priv.PublicKey, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("the token is not signed by the stored key")
	}
	if err := e.Verify(tok); err != nil {
		t.Fatalf("the server refuses its own token: %v", err)
	}
}

// TestRule_AcceptsOnlyItsOwnES256AccessTokens: a token assembled by hand with
// crypto/ecdsa under the server's published key id but signed by another
// key, an unsigned one, and one with swapped claims are refused by the
// in-process verifier.
func TestRule_AcceptsOnlyItsOwnES256AccessTokens(t *testing.T) {
	e := testserver.NewEnv(t)
	tok, _ := e.Tokens(e.PublicClient(), "entries:read")["access_token"].(string)
	parts := strings.Split(tok, ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	_ = json.Unmarshal(hb, &h)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign := func(header map[string]any) string {
		enc := base64.RawURLEncoding.EncodeToString
		b, _ := json.Marshal(header)
		input := enc(b) + "." + parts[1]
		d := sha256.Sum256([]byte(input))
		r, s, _ := ecdsa.Sign(rand.Reader, other, d[:])
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return input + "." + enc(sig)
	}
	for name, bad := range map[string]string{
		"foreign key":  sign(h),
		"alg none":     base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + ".",
		"claims moved": parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin"}`)) + "." + parts[2],
	} {
		if err := e.Verify(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := e.Verify(tok); err != nil {
		t.Fatalf("own token refused: %v", err)
	}
}
