package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/epicme/epicme/internal/lru"
)

// JWTOptions configure a [JWTVerifier].
type JWTOptions struct {
	// Issuer is the authorization server's issuer identifier; the token's
	// "iss" must equal it exactly (RFC 9068 §4). Required.
	Issuer string
	// Resource is this server's public MCP URL; the token's "aud" must name
	// it (RFC 9068 §4, RFC 8707). Required.
	Resource string
	// JWKSURL is where the issuer publishes its keys. Default: the jwks_uri
	// of the issuer's metadata (RFC 8414, then OpenID Connect Discovery).
	JWKSURL string
	// Algorithms is the allow-list of signature algorithms (default RS256,
	// ES256, EdDSA). "none" and HMAC algorithms are never accepted.
	Algorithms []string
	// AllowTypJWT also accepts the header typ "JWT", which some issuers
	// write on access tokens instead of RFC 9068's "at+jwt".
	AllowTypJWT bool
	// Types, when set, are the header typ values accepted instead of
	// "at+jwt" (case-insensitive, an "application/" prefix ignored; ""
	// accepts a JWT without typ): a verifier of JWTs other than access
	// tokens names theirs, such as "oauth-id-jag+jwt" (RFC 8725 §3.11).
	Types []string
	// Keys, when set, are the issuer's keys, fixed: nothing is fetched,
	// and JWKSURL is not used.
	Keys *KeySet
	// Skew is the clock skew allowed on exp and nbf (default 30 s).
	Skew time.Duration
	// RefreshInterval is how often the JWKS is refetched (default 1 h);
	// refetching happens in the background, the old keys serve meanwhile.
	RefreshInterval time.Duration
	// MinRefreshInterval rate-limits refetches caused by an unknown kid
	// (default 10 s), so a flood of forged kids cannot flood the issuer.
	MinRefreshInterval time.Duration
	// HTTPClient fetches metadata and keys (default: a client with Timeout).
	HTTPClient *http.Client
	// Timeout bounds one fetch (default 5 s).
	Timeout time.Duration
	// CacheSize bounds the number of verified tokens remembered until their
	// expiry (default 10000; negative disables the cache).
	CacheSize int
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// JWTVerifier verifies JWT access tokens (RFC 9068) locally with the
// issuer's published keys. A verified token is remembered by its SHA-256
// until it expires, so its signature is checked once.
//
// A revoked JWT keeps working until it expires: keep access tokens short
// lived, or use an [IntrospectionVerifier] when revocation must bite sooner.
type JWTVerifier struct {
	opts     JWTOptions
	algs     []jose.SignatureAlgorithm
	resource string
	client   *http.Client
	cache    *lru.Cache[tokenKey, *TokenInfo]

	fetchMu     sync.Mutex // serialises fetches
	mu          sync.RWMutex
	jwksURL     string
	keys        []publicKey
	fetchedAt   time.Time // last successful fetch
	attemptedAt time.Time // last fetch attempt
	refreshing  bool
}

// NewJWTVerifier checks opts and returns a verifier. It does not contact the
// issuer: metadata and keys are fetched on first use, so the server starts
// while the authorization server is down.
func NewJWTVerifier(opts JWTOptions) (*JWTVerifier, error) {
	if opts.Issuer == "" {
		return nil, errors.New("auth: JWT verification needs the issuer")
	}
	if opts.Resource == "" {
		return nil, errors.New("auth: JWT verification needs the resource URL to check the audience")
	}
	if len(opts.Algorithms) == 0 {
		opts.Algorithms = []string{"RS256", "ES256", "EdDSA"}
	}
	var algs []jose.SignatureAlgorithm
	for _, a := range opts.Algorithms {
		if !supportedAlgorithms[a] {
			return nil, fmt.Errorf("auth: JWT algorithm %q is not supported (allowed: RS*, PS*, ES*, EdDSA)", a)
		}
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	if opts.Skew <= 0 {
		opts.Skew = 30 * time.Second
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = time.Hour
	}
	if opts.MinRefreshInterval <= 0 {
		opts.MinRefreshInterval = 10 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 10000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	v := &JWTVerifier{opts: opts, algs: algs, resource: NormalizeResource(opts.Resource), client: opts.HTTPClient, jwksURL: opts.JWKSURL}
	if v.client == nil {
		v.client = &http.Client{Timeout: opts.Timeout}
	}
	if opts.CacheSize > 0 {
		v.cache = lru.New[tokenKey, *TokenInfo](opts.CacheSize)
	}
	return v, nil
}

// Issuer returns the issuer whose JWTs v verifies.
func (v *JWTVerifier) Issuer() string { return v.opts.Issuer }

// jwtClaims are the claims RFC 9068 §2.2 requires or that this package reads.
type jwtClaims struct {
	Iss      string          `json:"iss"`
	Sub      string          `json:"sub"`
	Aud      json.RawMessage `json:"aud"`
	Exp      json.Number     `json:"exp"`
	Nbf      json.Number     `json:"nbf"`
	Iat      json.Number     `json:"iat"`
	ClientID string          `json:"client_id"`
	Azp      string          `json:"azp"`
	Scope    json.RawMessage `json:"scope"`
	Scp      json.RawMessage `json:"scp"`
}

// Verify implements [Verifier].
func (v *JWTVerifier) Verify(ctx context.Context, token string) (*TokenInfo, error) {
	k := keyOf(token)
	now := v.opts.Now()
	if info, ok := v.cache.Get(k, now); ok {
		return info, nil
	}
	info, err := v.verify(ctx, token, now)
	if err != nil {
		return nil, err
	}
	// Remember until the token expires (plus the skew it was granted).
	v.cache.Put(k, info, info.Expiry.Add(v.opts.Skew))
	return info, nil
}

func (v *JWTVerifier) verify(ctx context.Context, token string, now time.Time) (*TokenInfo, error) {
	if !strings.Contains(token, ".") {
		return nil, invalidToken("the access token is not a JWT")
	}
	j, reason := parseJWS(token, v.algs, "the JWT")
	if reason != "" {
		return nil, invalidToken("%s", reason)
	}
	h := j.Signatures[0].Protected
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !v.typAllowed(typ) {
		if v.opts.Types != nil {
			return nil, invalidToken("the JWT's typ %q is not one of %q", typ, v.opts.Types)
		}
		return nil, invalidToken("the JWT is not an access token (typ must be at+jwt)")
	}
	key, err := v.keyFor(ctx, h.KeyID, h.Algorithm, now)
	if err != nil {
		return nil, err
	}
	payload, err := j.Verify(key)
	if err != nil {
		return nil, invalidToken("the JWT signature does not verify")
	}
	var c jwtClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalidToken("the JWT claims are not a JSON object")
	}
	if c.Iss != v.opts.Issuer {
		return nil, invalidToken("the JWT was issued by another issuer (iss)")
	}
	info := &TokenInfo{Issuer: c.Iss, Subject: c.Sub, ClientID: c.ClientID}
	if info.ClientID == "" {
		info.ClientID = c.Azp
	}
	if info.Subject == "" {
		return nil, invalidToken("the JWT has no subject (sub)")
	}
	exp, ok := numericDate(c.Exp)
	if !ok {
		return nil, invalidToken("the JWT has no expiry (exp)")
	}
	info.Expiry = exp
	if !now.Before(exp.Add(v.opts.Skew)) {
		return nil, invalidToken("the JWT has expired (exp)")
	}
	if nbf, ok := numericDate(c.Nbf); ok && now.Add(v.opts.Skew).Before(nbf) {
		return nil, invalidToken("the JWT is not valid yet (nbf)")
	}
	if iat, ok := numericDate(c.Iat); ok {
		info.IssuedAt = iat
	}
	if info.Audience, err = readAudience(c.Aud); err != nil {
		return nil, invalidToken("the JWT audience (aud) is malformed")
	}
	if !audienceContains(info.Audience, v.resource) {
		return nil, invalidToken("the JWT was issued for another audience (aud)")
	}
	info.Scopes = append(readScopes(c.Scope), readScopes(c.Scp)...)
	info.Scopes = slices.Compact(info.Scopes)
	var extra map[string]any
	_ = json.Unmarshal(payload, &extra)
	for _, name := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "client_id", "scope", "scp"} {
		delete(extra, name)
	}
	info.Extra = extra
	return info, nil
}

// readScopes reads a scope claim written as a space-separated string
// (RFC 9068 §2.2.3) or as an array of strings ("scp", common in practice).
func readScopes(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.Fields(s)
	}
	var a []string
	if json.Unmarshal(raw, &a) == nil {
		var out []string
		for _, x := range a {
			out = append(out, strings.Fields(x)...)
		}
		return out
	}
	return nil
}

func (v *JWTVerifier) typAllowed(typ string) bool {
	t := strings.ToLower(typ)
	t = strings.TrimPrefix(t, "application/")
	if v.opts.Types != nil {
		return slices.ContainsFunc(v.opts.Types, func(want string) bool { return strings.EqualFold(t, want) })
	}
	switch t {
	case "at+jwt":
		return true
	case "jwt":
		return v.opts.AllowTypJWT
	}
	return false
}

// keyFor finds the key that signed a token, fetching the JWKS when none is
// loaded, refetching (rate-limited) when the kid is unknown, and refreshing
// in the background when the keys are old.
func (v *JWTVerifier) keyFor(ctx context.Context, kid, alg string, now time.Time) (any, error) {
	if v.opts.Keys != nil {
		if key, ok := findKey(v.opts.Keys.keys, kid, alg); ok {
			return key, nil
		}
		return nil, invalidToken("the JWT was signed with an unknown key")
	}
	v.mu.RLock()
	loaded := !v.fetchedAt.IsZero()
	stale := loaded && now.Sub(v.fetchedAt) > v.opts.RefreshInterval
	key, found := findKey(v.keys, kid, alg)
	v.mu.RUnlock()
	if !loaded {
		v.mu.RLock()
		recent := !v.attemptedAt.IsZero() && now.Sub(v.attemptedAt) < v.opts.MinRefreshInterval
		v.mu.RUnlock()
		if recent {
			// The last attempt failed moments ago: do not hammer an issuer
			// that is down.
			return nil, unavailable("the issuer's keys could not be fetched; retrying after %s", v.opts.MinRefreshInterval)
		}
		if err := v.refresh(ctx, now); err != nil {
			return nil, err
		}
		v.mu.RLock()
		key, found = findKey(v.keys, kid, alg)
		v.mu.RUnlock()
	} else if stale {
		v.refreshInBackground(now)
	}
	if found {
		return key, nil
	}
	v.mu.RLock()
	mayRefetch := now.Sub(v.attemptedAt) >= v.opts.MinRefreshInterval
	v.mu.RUnlock()
	if mayRefetch {
		if err := v.refresh(ctx, now); err != nil {
			return nil, err
		}
		v.mu.RLock()
		key, found = findKey(v.keys, kid, alg)
		v.mu.RUnlock()
		if found {
			return key, nil
		}
	}
	return nil, invalidToken("the JWT was signed with an unknown key")
}

// findKey picks the key named kid that fits alg; with no kid, the only key
// that fits alg.
func findKey(keys []publicKey, kid, alg string) (any, bool) {
	var match any
	n := 0
	for _, k := range keys {
		if kid != "" && k.kid != kid {
			continue
		}
		if k.alg != "" && k.alg != alg {
			continue
		}
		if !keyFitsAlg(k.key, alg) {
			continue
		}
		match = k.key
		n++
	}
	return match, n == 1
}

func (v *JWTVerifier) refreshInBackground(now time.Time) {
	v.mu.Lock()
	if v.refreshing {
		v.mu.Unlock()
		return
	}
	v.refreshing = true
	v.mu.Unlock()
	go func() {
		_ = v.refresh(context.Background(), now)
		v.mu.Lock()
		v.refreshing = false
		v.mu.Unlock()
	}()
}

// refresh fetches the JWKS (discovering its URL first if needed). Concurrent
// callers wait for one fetch. On failure the old keys stay.
func (v *JWTVerifier) refresh(ctx context.Context, now time.Time) error {
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	v.mu.RLock()
	done := now.Before(v.attemptedAt)
	v.mu.RUnlock()
	if done {
		// Someone fetched while we waited for the lock.
		return nil
	}
	v.mu.Lock()
	v.attemptedAt = v.opts.Now()
	jwksURL := v.jwksURL
	v.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.opts.Timeout)
	defer cancel()
	if jwksURL == "" {
		md, err := FetchServerMetadata(ctx, v.client, v.opts.Issuer)
		if err != nil {
			return err
		}
		if md.JWKSURI == "" {
			return unavailable("the issuer's metadata has no jwks_uri")
		}
		jwksURL = md.JWKSURI
	}
	body, err := getJSON(ctx, v.client, jwksURL)
	if err != nil {
		return err
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return unavailable("%v", err)
	}
	v.mu.Lock()
	v.jwksURL = jwksURL
	v.keys = keys
	v.fetchedAt = v.opts.Now()
	v.mu.Unlock()
	return nil
}

// ServerMetadata is the part of an authorization server's metadata (RFC 8414
// §2) this package uses.
type ServerMetadata struct {
	Issuer                string   `json:"issuer"`
	JWKSURI               string   `json:"jwks_uri"`
	IntrospectionEndpoint string   `json:"introspection_endpoint"`
	ScopesSupported       []string `json:"scopes_supported"`
}

// FetchServerMetadata fetches an issuer's metadata: first RFC 8414's
// /.well-known/oauth-authorization-server (inserted before the issuer's
// path, §3.1), then OpenID Connect Discovery's
// <issuer>/.well-known/openid-configuration. The document's issuer must
// equal the one asked for (RFC 8414 §3.3). Errors wrap [ErrUnavailable].
func FetchServerMetadata(ctx context.Context, client *http.Client, issuer string) (*ServerMetadata, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, unavailable("issuer %q is not an absolute URL", issuer)
	}
	path := strings.TrimSuffix(u.Path, "/")
	oauth := *u
	oauth.Path = "/.well-known/oauth-authorization-server" + path
	oidc := *u
	oidc.Path = path + "/.well-known/openid-configuration"
	var errs []string
	for _, candidate := range []string{oauth.String(), oidc.String()} {
		body, err := getJSON(ctx, client, candidate)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		var md ServerMetadata
		if err := json.Unmarshal(body, &md); err != nil {
			errs = append(errs, candidate+": not JSON metadata")
			continue
		}
		if md.Issuer != issuer {
			errs = append(errs, fmt.Sprintf("%s: issuer %q differs from %q", candidate, md.Issuer, issuer))
			continue
		}
		return &md, nil
	}
	return nil, unavailable("no usable authorization server metadata: %s", strings.Join(errs, "; "))
}

func getJSON(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, unavailable("%v", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, unavailable("%v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, unavailable("reading %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, unavailable("%s answered HTTP %d", u, resp.StatusCode)
	}
	return body, nil
}
