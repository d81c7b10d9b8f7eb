package interop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
)

// jwtParts is a decoded JWS compact serialization (RFC 7515 §7.1).
type jwtParts struct {
	Header  map[string]any
	Claims  map[string]any
	signed  []byte
	sig     []byte
	rawText string
}

func decodeJWT(t *testing.T, token string) jwtParts {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts, want a JWS compact serialization of 3", len(parts))
	}
	j := jwtParts{signed: []byte(parts[0] + "." + parts[1]), rawText: token}
	for i, dst := range []*map[string]any{&j.Header, &j.Claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("JWT part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatalf("JWT part %d: %v", i, err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("JWT signature: %v", err)
	}
	j.sig = sig
	return j
}

// jwk is one key of a JWK Set (RFC 7517 §4), public parts only.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

func fetchJWKS(t *testing.T, uri string) []jwk {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, uri, nil)
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if status := doJSON(t, req, &set); status != http.StatusOK {
		t.Fatalf("JWKS answered %d", status)
	}
	return set.Keys
}

// verifyJWT checks a JWT's signature with the key its kid names in keys.
func verifyJWT(j jwtParts, keys []jwk) error {
	kid, _ := j.Header["kid"].(string)
	alg, _ := j.Header["alg"].(string)
	for _, k := range keys {
		if k.Kid != kid {
			continue
		}
		b := func(s string) []byte { v, _ := base64.RawURLEncoding.DecodeString(s); return v }
		digest := sha256.Sum256(j.signed)
		switch alg {
		case "RS256":
			pub := &rsa.PublicKey{N: new(big.Int).SetBytes(b(k.N)), E: int(new(big.Int).SetBytes(b(k.E)).Int64())}
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], j.sig)
		case "ES256":
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, b(k.X)...), b(k.Y)...))
			if err != nil {
				return err
			}
			if len(j.sig) != 64 {
				return fmt.Errorf("ES256 signature is %d bytes, want 64", len(j.sig))
			}
			if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(j.sig[:32]), new(big.Int).SetBytes(j.sig[32:])) {
				return fmt.Errorf("ES256 signature does not verify")
			}
			return nil
		case "EdDSA", "Ed25519":
			if !ed25519.Verify(ed25519.PublicKey(b(k.X)), j.signed, j.sig) {
				return fmt.Errorf("EdDSA signature does not verify")
			}
			return nil
		default:
			return fmt.Errorf("unexpected alg %q", alg)
		}
	}
	return fmt.Errorf("no key with kid %q in the JWKS", kid)
}
