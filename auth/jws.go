package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
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

// jwsHeader is the protected header of a compact JWS (RFC 7515 §4).
type jwsHeader struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Typ  string   `json:"typ"`
	Crit []string `json:"crit"`
}

// compactJWS is a parsed compact serialisation: header.payload.signature.
type compactJWS struct {
	header       jwsHeader
	signingInput string
	payload      []byte
	signature    []byte
}

var b64 = base64.RawURLEncoding

func parseCompactJWS(token string) (*compactJWS, error) {
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, invalidToken("the access token is not a JWT")
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(s, ".") {
		return nil, invalidToken("the access token is not a compact JWS")
	}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return nil, invalidToken("the JWT header is not base64url")
	}
	var j compactJWS
	if err := json.Unmarshal(hb, &j.header); err != nil {
		return nil, invalidToken("the JWT header is not JSON")
	}
	if j.payload, err = b64.DecodeString(p); err != nil {
		return nil, invalidToken("the JWT payload is not base64url")
	}
	if j.signature, err = b64.DecodeString(s); err != nil {
		return nil, invalidToken("the JWT signature is not base64url")
	}
	if len(j.signature) == 0 {
		return nil, invalidToken("the JWT is unsigned")
	}
	j.signingInput = token[:len(h)+1+len(p)]
	return &j, nil
}

// jwk is a public JSON Web Key (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
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
		var k jwk
		if json.Unmarshal(raw, &k) != nil {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.D != "" {
			// A private key in a public JWKS is a misconfiguration; do not
			// use it.
			continue
		}
		pk, err := k.publicKey()
		if err != nil {
			continue
		}
		keys = append(keys, publicKey{kid: k.Kid, alg: k.Alg, key: pk})
	}
	return keys, nil
}

func (k jwk) publicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err := b64.DecodeString(k.N)
		if err != nil {
			return nil, err
		}
		e, err := b64.DecodeString(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA exponent")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < 2048 {
			return nil, errors.New("RSA key shorter than 2048 bits")
		}
		return pub, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, errors.New("unsupported curve")
		}
		x, err1 := b64.DecodeString(k.X)
		y, err2 := b64.DecodeString(k.Y)
		if err1 != nil || err2 != nil {
			return nil, errors.New("bad EC coordinates")
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, errors.New("bad EC coordinate length")
		}
		// Parse through the uncompressed point encoding so that points
		// off the curve are rejected.
		pt := append([]byte{4}, append(x, y...)...)
		return ecdsa.ParseUncompressedPublicKey(curve, pt)
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, errors.New("unsupported OKP curve")
		}
		x, err := b64.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, errors.New("unsupported key type")
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

// digestFor hashes the signing input with the hash alg names.
func digestFor(alg string, input string) (crypto.Hash, []byte) {
	switch alg[2:] {
	case "256":
		s := sha256.Sum256([]byte(input))
		return crypto.SHA256, s[:]
	case "384":
		s := sha512.Sum384([]byte(input))
		return crypto.SHA384, s[:]
	default:
		s := sha512.Sum512([]byte(input))
		return crypto.SHA512, s[:]
	}
}

// verifySignature checks a JWS signature (RFC 7518 §3.3-3.5, RFC 8037 §3.1).
func verifySignature(alg string, key crypto.PublicKey, signingInput string, sig []byte) bool {
	if !keyFitsAlg(key, alg) {
		return false
	}
	if alg == "EdDSA" {
		return ed25519.Verify(key.(ed25519.PublicKey), []byte(signingInput), sig)
	}
	h, digest := digestFor(alg, signingInput)
	switch k := key.(type) {
	case *rsa.PublicKey:
		if alg[0] == 'P' {
			return rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(k, h, digest, sig) == nil
	case *ecdsa.PublicKey:
		// JWS carries R||S, each the curve's size (RFC 7518 §3.4), not DER.
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k, digest, r, s)
	}
	return false
}
