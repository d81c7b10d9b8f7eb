package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Signature algorithms (RFC 7518 §3, RFC 8037 §3.1) that a [JWTVerifier] can
// check. HMAC (HS*) is deliberately absent: with a public key taken from a
// JWKS, accepting it would let anyone who can read the JWKS forge tokens.
var supportedAlgorithms = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// parseJWS parses a compact JWS (RFC 7515 §7.1) whose alg is in algs. A
// refusal returns its reason, which names the rule the token broke (RFC
// 8725 §3.1: never "none", never HMAC with a public key, only the
// configured algorithms) and the token as what ("the JWT", "the proof").
func parseJWS(token string, algs []jose.SignatureAlgorithm, what string) (*jose.JSONWebSignature, string) {
	j, err := jose.ParseSignedCompact(token, algs)
	var unexpected *jose.ErrUnexpectedSignatureAlgorithm
	switch {
	case errors.As(err, &unexpected):
		alg := string(unexpected.Got)
		switch {
		case alg == "" || strings.EqualFold(alg, "none"):
			return nil, what + " is unsigned: alg none is refused"
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			return nil, what + " is HMAC-signed: HMAC is refused"
		}
		return nil, what + " algorithm is not allowed"
	case err != nil:
		return nil, what + " is not a compact JWS"
	}
	if _, ok := j.Signatures[0].Protected.ExtraHeaders["crit"]; ok {
		// RFC 7515 §4.1.11: extensions we do not understand make the JWS
		// invalid (the library understands "b64", which a JWT never uses).
		return nil, what + " has critical header extensions"
	}
	return j, ""
}

// publicKey is a parsed JWK ready for verification.
type publicKey struct {
	kid string
	alg string // "" when the JWK does not pin one
	key crypto.PublicKey
}

// parseJWKS reads a JWK Set, keeping signature keys it understands and
// skipping the rest (RFC 7517 §5: unknown key types are ignored).
func parseJWKS(data []byte) ([]publicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("the JWKS is not a JSON key set: %v", err)
	}
	var keys []publicKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if k.UnmarshalJSON(raw) != nil || (k.Use != "" && k.Use != "sig") {
			continue
		}
		// A private or symmetric key in a public JWKS is a
		// misconfiguration; do not use it.
		if !k.IsPublic() {
			continue
		}
		if r, ok := k.Key.(*rsa.PublicKey); ok && r.N.BitLen() < 2048 {
			continue
		}
		keys = append(keys, publicKey{kid: k.KeyID, alg: k.Algorithm, key: k.Key})
	}
	return keys, nil
}

// keyFitsAlg reports whether key is of the type alg needs, so that a token
// cannot choose an algorithm family its key was not made for (RFC 8725 §2.1).
func keyFitsAlg(key crypto.PublicKey, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// KeySet is a JSON Web Key Set (RFC 7517 §5) of public signature keys,
// parsed once: the fixed keys of a [JWTVerifier] (JWTOptions.Keys), such as
// those a client registered for its assertions (RFC 7523 §2.2).
type KeySet struct{ keys []publicKey }

// ParseKeySet reads a JWK Set, keeping the public signature keys it can use
// (RSA of at least 2048 bits, EC, Ed25519); a set with none is an error.
func ParseKeySet(data []byte) (*KeySet, error) {
	keys, err := parseJWKS(data)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("the JWKS has no usable public signature key (RSA of 2048 bits or more, EC or Ed25519, not private, use sig)")
	}
	return &KeySet{keys: keys}, nil
}

// MarshalJSON writes the set as a JWK Set (RFC 7517 §5) of the public
// keys it kept: whatever else the set it was parsed from held (private
// parts, symmetric or encryption keys) is not written.
func (s *KeySet) MarshalJSON() ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(s.keys))}
	for _, k := range s.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key, KeyID: k.kid, Algorithm: k.alg, Use: "sig"})
	}
	return json.Marshal(set)
}
