package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/epicme/epicme/internal/lru"
)

// IntrospectionOptions configure an [IntrospectionVerifier].
type IntrospectionOptions struct {
	// Endpoint is the authorization server's introspection endpoint
	// (RFC 7662 §2). Required.
	Endpoint string
	// ClientID and ClientSecret authenticate this resource server to the
	// authorization server with client_secret_basic (RFC 6749 §2.3.1:
	// both form-urlencoded before the Basic encoding). Required: an
	// introspection endpoint open to anyone is a token oracle.
	ClientID     string
	ClientSecret string
	// Resource is this server's public MCP URL; the response's "aud" must
	// name it (RFC 8707). Required.
	Resource string
	// Issuer is the authorization server's issuer. When the response carries
	// "iss" it must equal Issuer; when it does not, TokenInfo.Issuer is set to
	// Issuer. Required.
	Issuer string
	// HTTPClient makes the calls (default: a client with Timeout).
	HTTPClient *http.Client
	// Timeout bounds one introspection call (default 5 s).
	Timeout time.Duration
	// CacheTTL bounds how long an active answer is reused (default 60 s).
	// It is also the longest a revoked token keeps working.
	CacheTTL time.Duration
	// NegativeTTL is how long an inactive answer is reused (default 5 s).
	NegativeTTL time.Duration
	// CacheSize bounds the number of cached answers (default 10000; negative
	// disables the cache).
	CacheSize int
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// IntrospectionVerifier verifies opaque (or any) access tokens by asking the
// authorization server (RFC 7662). Answers are cached by the SHA-256 of the
// token: active answers for min(exp - now, CacheTTL), inactive ones for
// NegativeTTL; concurrent verifications of one token share one call.
//
// Revocation takes effect after at most CacheTTL.
type IntrospectionVerifier struct {
	opts     IntrospectionOptions
	resource string
	client   *http.Client
	auth     string
	cache    *lru.Cache[tokenKey, introspectionResult]
	flight   flight[tokenKey, introspectionResult]
}

type introspectionResult struct {
	info *TokenInfo
	err  error
}

// NewIntrospectionVerifier checks opts and returns a verifier.
func NewIntrospectionVerifier(opts IntrospectionOptions) (*IntrospectionVerifier, error) {
	if opts.Endpoint == "" {
		return nil, errors.New("auth: introspection endpoint is required")
	}
	if u, err := url.Parse(opts.Endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("auth: introspection endpoint %q must be an absolute http(s) URL", opts.Endpoint)
	}
	if opts.ClientID == "" || opts.ClientSecret == "" {
		return nil, errors.New("auth: introspection client id and secret are required (RFC 7662 §2.1 client authentication)")
	}
	if opts.Resource == "" {
		return nil, errors.New("auth: introspection needs the resource URL to check the audience")
	}
	if opts.Issuer == "" {
		return nil, errors.New("auth: introspection needs the issuer")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = time.Minute
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = 5 * time.Second
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 10000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	v := &IntrospectionVerifier{opts: opts, resource: NormalizeResource(opts.Resource), client: opts.HTTPClient}
	if v.client == nil {
		v.client = &http.Client{Timeout: opts.Timeout}
	}
	v.auth = basicAuth(opts.ClientID, opts.ClientSecret)
	if opts.CacheSize > 0 {
		v.cache = lru.New[tokenKey, introspectionResult](opts.CacheSize)
	}
	return v, nil
}

// basicAuth encodes client credentials as RFC 6749 §2.3.1 asks: each part
// application/x-www-form-urlencoded, then HTTP Basic.
func basicAuth(id, secret string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return r.Header.Get("Authorization")
}

// Verify implements [Verifier].
func (v *IntrospectionVerifier) Verify(ctx context.Context, token string) (*TokenInfo, error) {
	k := keyOf(token)
	if r, ok := v.cache.Get(k, v.opts.Now()); ok {
		return r.info, r.err
	}
	r, _ := v.flight.do(k, func() (introspectionResult, error) {
		if r, ok := v.cache.Get(k, v.opts.Now()); ok {
			return r, nil
		}
		// The call outlives the caller that started it: others may be
		// waiting for its answer.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.opts.Timeout)
		defer cancel()
		info, err := v.introspect(cctx, token)
		r := introspectionResult{info, err}
		now := v.opts.Now()
		switch {
		case err == nil:
			exp := now.Add(v.opts.CacheTTL)
			if !info.Expiry.IsZero() && info.Expiry.Before(exp) {
				exp = info.Expiry
			}
			v.cache.Put(k, r, exp)
		case errors.Is(err, ErrInvalidToken):
			v.cache.Put(k, r, now.Add(v.opts.NegativeTTL))
		}
		return r, nil
	})
	return r.info, r.err
}

// introspectionResponse is RFC 7662 §2.2.
type introspectionResponse struct {
	Active    bool            `json:"active"`
	Scope     string          `json:"scope"`
	ClientID  string          `json:"client_id"`
	Username  string          `json:"username"`
	TokenType string          `json:"token_type"`
	Exp       json.Number     `json:"exp"`
	Iat       json.Number     `json:"iat"`
	Nbf       json.Number     `json:"nbf"`
	Sub       string          `json:"sub"`
	Aud       json.RawMessage `json:"aud"`
	Iss       string          `json:"iss"`
}

func (v *IntrospectionVerifier) introspect(ctx context.Context, token string) (*TokenInfo, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.opts.Endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, unavailable("building the introspection request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", v.auth)
	resp, err := v.client.Do(req)
	if err != nil {
		// The error text of net/http names the URL, never the form body.
		return nil, unavailable("introspection request failed: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, unavailable("reading the introspection response: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		// 401/403 mean our own credentials are wrong: an operator problem,
		// not the user's, so not a 401 for the user either.
		return nil, unavailable("introspection endpoint answered HTTP %d", resp.StatusCode)
	}
	var ir introspectionResponse
	if err := json.Unmarshal(body, &ir); err != nil {
		return nil, unavailable("introspection response is not RFC 7662 JSON: %v", err)
	}
	if !ir.Active {
		return nil, invalidToken("the access token is not active")
	}
	var extra map[string]any
	_ = json.Unmarshal(body, &extra)
	for _, k := range []string{"active", "scope", "client_id", "token_type", "exp", "iat", "nbf", "sub", "aud", "iss"} {
		delete(extra, k)
	}
	info := &TokenInfo{
		Issuer:   ir.Iss,
		Subject:  ir.Sub,
		ClientID: ir.ClientID,
		Scopes:   strings.Fields(ir.Scope),
		Extra:    extra,
	}
	if info.Issuer == "" {
		info.Issuer = v.opts.Issuer
	} else if info.Issuer != v.opts.Issuer {
		return nil, invalidToken("the access token was issued by another issuer")
	}
	if info.Subject == "" {
		return nil, invalidToken("the access token has no subject")
	}
	// RFC 9449 §6.2: a DPoP-bound token introspects as token_type DPoP
	// with cnf.jkt; without the key binding it is not usable.
	dpop := strings.EqualFold(ir.TokenType, "DPoP") && info.ConfirmationJKT() != ""
	if ir.TokenType != "" && !dpop && !strings.EqualFold(ir.TokenType, "Bearer") && !strings.EqualFold(ir.TokenType, "access_token") {
		return nil, invalidToken("the token is not a bearer access token")
	}
	if info.Audience, err = readAudience(ir.Aud); err != nil {
		return nil, unavailable("introspection response: %v", err)
	}
	if !audienceContains(info.Audience, v.resource) {
		return nil, invalidToken("the access token was issued for another resource")
	}
	now := v.opts.Now()
	if t, ok := numericDate(ir.Exp); ok {
		info.Expiry = t
		if !now.Before(t) {
			return nil, invalidToken("the access token has expired")
		}
	}
	if t, ok := numericDate(ir.Nbf); ok && now.Before(t) {
		return nil, invalidToken("the access token is not valid yet")
	}
	if t, ok := numericDate(ir.Iat); ok {
		info.IssuedAt = t
	}
	return info, nil
}

// readAudience reads "aud" as a string or an array of strings (RFC 7519
// §4.1.3, RFC 7662 §2.2).
func readAudience(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	var a []string
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, errors.New(`"aud" is neither a string nor an array of strings`)
	}
	return a, nil
}

// numericDate reads an RFC 7519 §2 NumericDate claim (seconds since the
// epoch, possibly fractional); false when it is absent or not a positive
// number.
func numericDate(n json.Number) (time.Time, bool) {
	if n == "" {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || f <= 0 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}
