package auth

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/epicme/epicme/internal/lru"
)

// Error codes of RFC 9449 §7.1 and §8 for a DPoP challenge.
const (
	ErrorInvalidDPoPProof = "invalid_dpop_proof"
	ErrorUseDPoPNonce     = "use_dpop_nonce"
)

// DPoPError is a refused DPoP proof (RFC 9449 §4.3, §7.1). Code is
// [ErrorInvalidDPoPProof] or [ErrorUseDPoPNonce]; Reason is safe to show the
// client in error_description and never contains the proof or the token.
type DPoPError struct {
	Code   string
	Reason string
}

func (e *DPoPError) Error() string { return e.Code + ": " + e.Reason }

func invalidProof(reason string) error {
	return &DPoPError{Code: ErrorInvalidDPoPProof, Reason: reason}
}

// DPoPReplayCache remembers the jti of the proofs seen until they expire
// (RFC 9449 §11.1). Seen reports whether jti was already recorded and
// records it otherwise, until expiry. An in-memory cache per instance is
// enough: the iat window is short, so a proof replayed at another instance
// after it left the window is refused for its age.
type DPoPReplayCache interface {
	Seen(jti string, expiry time.Time) bool
}

// DPoPOptions configures a [DPoPChecker].
type DPoPOptions struct {
	// Algorithms the proofs may be signed with (RFC 9449 §5.1
	// dpop_signing_alg_values_supported). Default: ES256, EdDSA, RS256,
	// PS256. Symmetric and "none" algorithms are never accepted.
	Algorithms []string
	// Window is how far iat may be from now, either way (RFC 9449 §11.1).
	// Default 60 s.
	Window time.Duration
	// Replay records the jti of accepted proofs. Default: an in-memory
	// cache of at most 100 000 entries.
	Replay DPoPReplayCache
	// NonceKey, when set, turns on server nonces (RFC 9449 §8, §9): every
	// proof must carry a nonce this checker issued, or is refused with
	// use_dpop_nonce and a fresh one in the DPoP-Nonce header. A nonce is an
	// HMAC of a time step under NonceKey, so every instance given the same
	// key (at least 32 bytes) issues and accepts the same nonces, and
	// nothing is stored.
	NonceKey []byte
	// NonceLifetime is the time step of the nonces (default 5 minutes); a
	// nonce is accepted during its step and the next one.
	NonceLifetime time.Duration
	// Now is the clock; tests set it. Default time.Now.
	Now func() time.Time
}

// DPoPChecker verifies DPoP proofs (RFC 9449 §4.3) presented to a resource
// server. It is safe for concurrent use.
type DPoPChecker struct {
	algs     []jose.SignatureAlgorithm
	window   time.Duration
	replay   DPoPReplayCache
	now      func() time.Time
	nonceKey []byte
	nonceTTL time.Duration
}

// defaultDPoPAlgorithms are the asymmetric algorithms accepted by default.
var defaultDPoPAlgorithms = []string{"ES256", "EdDSA", "RS256", "PS256"}

// NewDPoPChecker returns a checker for opts. It refuses an algorithm that
// is not an asymmetric signature algorithm (RFC 9449 §4.2: none and MAC
// algorithms are forbidden).
func NewDPoPChecker(opts DPoPOptions) (*DPoPChecker, error) {
	names := opts.Algorithms
	if len(names) == 0 {
		names = defaultDPoPAlgorithms
	}
	c := &DPoPChecker{window: opts.Window, replay: opts.Replay, now: opts.Now, nonceKey: opts.NonceKey, nonceTTL: opts.NonceLifetime}
	if c.nonceKey != nil && len(c.nonceKey) < 32 {
		return nil, errors.New("auth: the DPoP nonce key must be at least 32 bytes")
	}
	if c.nonceTTL <= 0 {
		c.nonceTTL = 5 * time.Minute
	}
	for _, a := range names {
		if !supportedAlgorithms[a] {
			return nil, errors.New("auth: DPoP algorithm " + a + " is not an asymmetric signature algorithm")
		}
		c.algs = append(c.algs, jose.SignatureAlgorithm(a))
	}
	if c.window <= 0 {
		c.window = time.Minute
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.replay == nil {
		m := newMemoryReplayCache(100_000)
		m.now = c.now
		c.replay = m
	}
	return c, nil
}

// Algorithms returns the accepted algorithms, for the algs parameter of a
// DPoP challenge (RFC 9449 §7.1).
func (c *DPoPChecker) Algorithms() []string {
	out := make([]string, len(c.algs))
	for i, a := range c.algs {
		out[i] = string(a)
	}
	return out
}

type dpopClaims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	ATH   string          `json:"ath"`
	Nonce string          `json:"nonce"`
}

// Check verifies proof, the value of the DPoP header of a request with
// method and target u, against accessToken and jkt, the token's cnf.jkt
// (RFC 9449 §4.3, §7.1). With an empty accessToken (a proof at a token
// endpoint) ath is not checked and jkt may be empty. It returns the JWK
// SHA-256 thumbprint (RFC 7638) of the proof's key. Errors are *DPoPError.
func (c *DPoPChecker) Check(method string, u *url.URL, proof, accessToken, jkt string) (string, error) {
	// §4.3 check 1: exactly one well-formed JWT.
	if proof == "" || strings.ContainsAny(proof, ", ") {
		return "", invalidProof("the DPoP header is not one JWT")
	}
	j, reason := parseJWS(proof, c.algs, "the proof")
	if reason != "" {
		return "", invalidProof(reason)
	}
	h := j.Signatures[0].Protected
	// §4.3 check 4: typ is dpop+jwt.
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return "", invalidProof("the proof typ is not dpop+jwt")
	}
	// §4.3 check 6-7: a public key in jwk, and the signature verifies
	// with it.
	key := h.JSONWebKey
	if key == nil || !key.Valid() || !key.IsPublic() {
		return "", invalidProof("the proof jwk is missing or not a public key")
	}
	payload, err := j.Verify(key.Key)
	if err != nil {
		return "", invalidProof("the proof signature does not verify")
	}
	var cl dpopClaims
	if json.Unmarshal(payload, &cl) != nil {
		return "", invalidProof("the proof claims are not a JSON object")
	}
	// §4.3 check 5: the required claims.
	var iat json.Number
	if cl.JTI == "" || cl.HTM == "" || cl.HTU == "" || json.Unmarshal(cl.IAT, &iat) != nil {
		return "", invalidProof("the proof lacks jti, htm, htu or iat")
	}
	// §4.3 check 8: htm is the method.
	if cl.HTM != method {
		return "", invalidProof("the proof is for another HTTP method")
	}
	// §4.3 check 9: htu is the target URI, without query and fragment,
	// after syntax- and scheme-based normalisation (RFC 3986 §6.2.2-3).
	if !htuMatches(cl.HTU, u) {
		return "", invalidProof("the proof is for another URL")
	}
	// §4.3 check 11 and §11.1: iat within the window.
	secs, err := iat.Float64()
	if err != nil || secs < 0 || secs > 1e11 {
		return "", invalidProof("the proof iat is not a number")
	}
	now := c.now()
	issued := time.Unix(0, int64(secs*1e9))
	if issued.Before(now.Add(-c.window)) || issued.After(now.Add(c.window)) {
		return "", invalidProof("the proof iat is outside the accepted window")
	}
	// §4.3 check 10, §8, §9: with server nonces, a nonce this server
	// issued, of this step or the one before.
	if c.nonceKey != nil && !c.nonceValid(cl.Nonce, now) {
		return "", &DPoPError{Code: ErrorUseDPoPNonce, Reason: "a DPoP nonce is required: sign a new proof with the one in the DPoP-Nonce header"}
	}
	// §4.3 check 12: with an access token, ath and the key binding.
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		want := base64.RawURLEncoding.EncodeToString(sum[:])
		if subtle.ConstantTimeCompare([]byte(cl.ATH), []byte(want)) != 1 {
			return "", invalidProof("the proof ath does not match the access token")
		}
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", invalidProof("the proof jwk has no thumbprint")
	}
	got := base64.RawURLEncoding.EncodeToString(tp)
	if jkt != "" && subtle.ConstantTimeCompare([]byte(got), []byte(jkt)) != 1 {
		return "", invalidProof("the proof key is not the key the token is bound to")
	}
	// §11.1: a jti once. Recorded last, so a refused proof does not
	// occupy the cache; the entry lives as long as the proof could be
	// accepted.
	if c.replay.Seen(got+" "+cl.JTI, issued.Add(c.window)) {
		return "", invalidProof("the proof was already used")
	}
	return got, nil
}

// Nonces reports whether the checker requires server nonces.
func (c *DPoPChecker) Nonces() bool { return c.nonceKey != nil }

// Nonce returns the server nonce to give clients now, in a DPoP-Nonce
// header (RFC 9449 §8.1), or "" when nonces are off.
func (c *DPoPChecker) Nonce() string {
	if c.nonceKey == nil {
		return ""
	}
	return c.nonceFor(c.now().UnixNano() / int64(c.nonceTTL))
}

// nonceFor is base64url(step || HMAC-SHA256(key, step)[:16]).
func (c *DPoPChecker) nonceFor(step int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(step))
	m := hmac.New(sha256.New, c.nonceKey)
	m.Write([]byte("dpop nonce\x00"))
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(append(b[:], m.Sum(nil)[:16]...))
}

// nonceValid reports whether nonce was issued in the step of now or the
// one before.
func (c *DPoPChecker) nonceValid(nonce string, now time.Time) bool {
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) != 24 {
		return false
	}
	step := int64(binary.BigEndian.Uint64(raw[:8]))
	cur := now.UnixNano() / int64(c.nonceTTL)
	if step != cur && step != cur-1 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(nonce), []byte(c.nonceFor(step))) == 1
}

// htuMatches compares a proof's htu with the request target, ignoring query
// and fragment, case-insensitive in scheme and host, with default ports and
// an empty path normalised (RFC 9449 §4.3, RFC 3986 §6.2.2, §6.2.3).
func htuMatches(htu string, target *url.URL) bool {
	p, err := url.Parse(htu)
	if err != nil || target == nil {
		return false
	}
	a, b := normalURL(p), normalURL(target)
	return a != "" && a == b
}

func normalURL(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || u.Host == "" || u.User != nil {
		return ""
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	// Percent-encoded unreserved characters decode (RFC 3986 §6.2.2.2);
	// hex digits of the rest compare upper-case (§6.2.2.1).
	if dec, err := url.PathUnescape(path); err == nil {
		path = (&url.URL{Path: dec}).EscapedPath()
	}
	return scheme + "://" + host + path
}

// memoryReplayCache is the default [DPoPReplayCache]: a bounded LRU of
// the jti seen, each kept until its proof leaves the iat window. When full
// the least recently seen goes first; with one window for every proof it
// is also the first to expire.
type memoryReplayCache struct {
	seen *lru.Cache[string, struct{}]
	now  func() time.Time
}

func newMemoryReplayCache(max int) *memoryReplayCache {
	return &memoryReplayCache{seen: lru.New[string, struct{}](max), now: time.Now}
}

// Seen implements [DPoPReplayCache].
func (m *memoryReplayCache) Seen(jti string, expiry time.Time) bool {
	return !m.seen.Add(jti, struct{}{}, expiry, m.now())
}
