package bench

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// DPoPKey is a DPoP client's key pair (P-256, ES256) and the JWK SHA-256
// thumbprint of its public key (RFC 7638), the cnf.jkt of the tokens bound
// to it.
type DPoPKey struct {
	signer jose.Signer
	// JKT is the key's thumbprint.
	JKT string
}

// NewDPoPKey makes a key.
func NewDPoPKey() (*DPoPKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tp, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return nil, err
	}
	return &DPoPKey{signer: s, JKT: base64.RawURLEncoding.EncodeToString(tp)}, nil
}

// Proof signs a proof for a POST to htu with token (RFC 9449 §4.2): a new
// jti, iat now, ath the token's hash.
func (k *DPoPKey) Proof(htu, token string) (string, error) {
	jti := make([]byte, 12)
	rand.Read(jti)
	ath := sha256.Sum256([]byte(token))
	payload, err := json.Marshal(map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(jti), "htm": "POST", "htu": htu,
		"iat": time.Now().Unix(), "ath": base64.RawURLEncoding.EncodeToString(ath[:]),
	})
	if err != nil {
		return "", err
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
