package authserver

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
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// KEKSize is the size in bytes of the key-encryption key.
const KEKSize = 32

// ErrWrongKEK means the signing keys in the store were sealed with another
// key-encryption key than the one configured: instances that share a store
// must share the key-encryption key too.
var ErrWrongKEK = errors.New("authserver: the signing keys were sealed with another key-encryption key")

// NewKEK returns a fresh random key-encryption key.
func NewKEK() []byte {
	k := make([]byte, KEKSize)
	rand.Read(k)
	return k
}

// subkey derives a key for one purpose from the key-encryption key, so that
// one secret file protects signing keys, client secrets, sessions and CSRF
// tokens without any two of them sharing a key.
func subkey(kek []byte, purpose string) []byte {
	m := hmac.New(sha256.New, kek)
	m.Write([]byte("epicme authserver " + purpose))
	return m.Sum(nil)
}

// sealer encrypts private keys at rest with AES-256-GCM; the key id is the
// additional data, so a sealed key cannot be moved to another row.
type sealer struct{ aead cipher.AEAD }

func newSealer(kek []byte) (*sealer, error) {
	block, err := aes.NewCipher(subkey(kek, "signing keys"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plain []byte, kid string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plain, []byte(kid))
}

func (s *sealer) open(sealed []byte, kid string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed key too short")
	}
	return s.aead.Open(nil, sealed[:n], sealed[n:], []byte(kid))
}

// signingKey is a loaded key.
type signingKey struct {
	SigningKey
	priv *ecdsa.PrivateKey
	pub  *ecdsa.PublicKey
}

// keyring holds the signing keys and rotates them (RFC 7517 key sets, with
// the rotation rule that a key is published before it signs and kept after
// it retires until every token it signed has expired).
type keyring struct {
	store  Store
	sealer *sealer

	rotateEvery time.Duration // how long a key signs
	publishLead time.Duration // how long a new key is published before it signs
	keepAfter   time.Duration // how long a retired key stays published

	mu        sync.RWMutex
	keys      []*signingKey // oldest first
	byKID     map[string]*signingKey
	jwks      []byte
	nextCheck atomic.Int64 // unix nanos of the next maintenance
	// nextReload bounds reloads for unknown kids (see reloadFor).
	nextReload atomic.Int64
}

func (k *keyring) load(ctx context.Context) error {
	stored, err := k.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	var keys []*signingKey
	for _, sk := range stored {
		der, err := k.sealer.open(sk.PrivateSealed, sk.KID)
		if err != nil {
			return fmt.Errorf("signing key %s cannot be decrypted: %w (%w)", sk.KID, ErrWrongKEK, err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", sk.KID, err)
		}
		ec, ok := priv.(*ecdsa.PrivateKey)
		if !ok {
			return fmt.Errorf("signing key %s is not an ECDSA key", sk.KID)
		}
		keys = append(keys, &signingKey{SigningKey: *sk, priv: ec, pub: &ec.PublicKey})
	}
	k.install(keys)
	return nil
}

// install replaces the in-memory key set. Caller holds mu or is the only
// user.
func (k *keyring) install(keys []*signingKey) {
	by := make(map[string]*signingKey, len(keys))
	set := struct {
		Keys []json.RawMessage `json:"keys"`
	}{Keys: []json.RawMessage{}}
	for _, sk := range keys {
		by[sk.KID] = sk
		set.Keys = append(set.Keys, sk.PublicJWK)
	}
	b, _ := json.Marshal(set)
	k.keys, k.byKID, k.jwks = keys, by, b
}

// maintain creates, retires and deletes keys as time requires. It runs at
// start and then at most once a minute, from whoever signs next.
func (k *keyring) maintain(ctx context.Context, now time.Time) error {
	if now.UnixNano() < k.nextCheck.Load() {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.UnixNano() < k.nextCheck.Load() {
		return nil
	}
	// Other instances sharing the store may have created or retired keys.
	if err := k.load(ctx); err != nil {
		return err
	}
	changed := false
	// The first key of a fresh install signs at once: nobody can have
	// cached a key set yet.
	if len(k.keys) == 0 {
		sk, err := k.generate(ctx, now, now)
		if err != nil {
			return err
		}
		k.keys = append(k.keys, sk)
		changed = true
	}
	newest := k.keys[len(k.keys)-1]
	if !newest.ActiveAt.After(now) && now.Sub(newest.ActiveAt) >= k.rotateEvery-k.publishLead {
		sk, err := k.generate(ctx, now, now.Add(k.publishLead))
		if err != nil {
			return err
		}
		k.keys = append(k.keys, sk)
		changed = true
	}
	// Retire every active key but the newest active one; delete retired
	// keys once their last token has expired.
	active := k.activeLocked(now)
	var keep []*signingKey
	for _, sk := range k.keys {
		if sk != active && !sk.ActiveAt.After(now) && sk.RetiredAt.IsZero() {
			if err := k.store.RetireSigningKey(ctx, sk.KID, now); err != nil {
				return err
			}
			sk.RetiredAt = now
			changed = true
		}
		if !sk.RetiredAt.IsZero() && now.Sub(sk.RetiredAt) > k.keepAfter {
			if err := k.store.DeleteSigningKey(ctx, sk.KID); err != nil {
				return err
			}
			changed = true
			continue
		}
		keep = append(keep, sk)
	}
	if changed {
		k.install(keep)
	}
	k.nextCheck.Store(now.Add(time.Minute).UnixNano())
	return nil
}

func (k *keyring) generate(ctx context.Context, now, activeAt time.Time) (*signingKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	kid := randomToken(12)
	pubJWK, err := jose.JSONWebKey{Key: &priv.PublicKey, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}.MarshalJSON()
	if err != nil {
		return nil, err
	}
	sk := &signingKey{
		SigningKey: SigningKey{
			KID:           kid,
			Alg:           "ES256",
			PrivateSealed: k.sealer.seal(der, kid),
			PublicJWK:     pubJWK,
			CreatedAt:     now,
			ActiveAt:      activeAt,
		},
		priv: priv,
		pub:  &priv.PublicKey,
	}
	if err := k.store.CreateSigningKey(ctx, &sk.SigningKey); err != nil {
		return nil, err
	}
	return sk, nil
}

// activeLocked returns the newest key whose activation time has come.
func (k *keyring) activeLocked(now time.Time) *signingKey {
	for i := len(k.keys) - 1; i >= 0; i-- {
		if !k.keys[i].ActiveAt.After(now) {
			return k.keys[i]
		}
	}
	return nil
}

func (k *keyring) signer(ctx context.Context, now time.Time) (*signingKey, error) {
	if err := k.maintain(ctx, now); err != nil {
		return nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	sk := k.activeLocked(now)
	if sk == nil {
		return nil, errors.New("no active signing key")
	}
	return sk, nil
}

func (k *keyring) lookup(kid string) *signingKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.byKID[kid]
}

func (k *keyring) jwksJSON() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.jwks
}

// b64 is the unpadded base64url of JOSE (RFC 7515 §2), also used for the
// page tokens.
var b64 = base64.RawURLEncoding

// es256 is the one algorithm this server signs with and accepts back.
var es256 = []jose.SignatureAlgorithm{jose.ES256}

// AccessTokenClaims are the claims of an EpicMe access token (RFC 9068 §2.2).
type AccessTokenClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Expiry   int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	JTI      string `json:"jti"`
	// Confirmation binds the token to a DPoP key (RFC 9449 §6.1, RFC
	// 7800 §3.1); nil for a bearer token.
	Confirmation *Confirmation `json:"cnf,omitempty"`
}

// Confirmation is a token's cnf claim: the JWK SHA-256 thumbprint (RFC
// 7638) of the key a DPoP-bound token is bound to.
type Confirmation struct {
	JKT string `json:"jkt"`
}

// signJWT signs claims as an RFC 9068 access token (typ at+jwt, §2.1).
func signJWT(sk *signingKey, claims *AccessTokenClaims) (string, error) {
	key := jose.JSONWebKey{Key: sk.priv, KeyID: sk.KID} // names the kid in the header
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(c)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// errBadJWT is a token that is not an EpicMe access token at all.
var errBadJWT = errors.New("malformed or badly signed token")

// parseJWT checks the signature of an ES256 at+jwt against the keyring and
// returns its claims. It checks nothing else.
func (k *keyring) parseJWT(token string) (*AccessTokenClaims, error) {
	if len(token) > 4096 {
		return nil, errBadJWT
	}
	j, err := jose.ParseSignedCompact(token, es256)
	if err != nil {
		return nil, errBadJWT
	}
	h := j.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "at+jwt" {
		return nil, errBadJWT
	}
	if _, crit := h.ExtraHeaders["crit"]; crit {
		return nil, errBadJWT
	}
	sk := k.lookup(h.KeyID)
	if sk == nil {
		if sk = k.reloadFor(h.KeyID); sk == nil {
			return nil, errBadJWT
		}
	}
	payload, err := j.Verify(sk.pub)
	if err != nil {
		return nil, errBadJWT
	}
	var c AccessTokenClaims
	if json.Unmarshal(payload, &c) != nil {
		return nil, errBadJWT
	}
	return &c, nil
}
