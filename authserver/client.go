package authserver

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/internal/lru"
)

// newClientID returns a random client id: 160 bits in lower-case base32,
// URL-safe, and never starting with "-" (which a command line would take for
// a flag).
func newClientID() string {
	b := make([]byte, 20)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.EncodeToString(b))
}

// errUnknownClient: no client has this id.
var errUnknownClient = errors.New("unknown client")

// sourceKey is the context key of the request's source for the
// metadata-document fetcher's budget.
type sourceKey struct{}

// withSource returns r's context carrying r's source, whose budget a
// metadata-document fetch made for r is charged to.
func (s *Server) withSource(r *http.Request) context.Context {
	var src fetchSource
	src.key, src.aggregate, src.limited = s.sourceKeys(r)
	return context.WithValue(r.Context(), sourceKey{}, src)
}

// lookupClient returns the client with this id: a stored client, or, for an
// https URL, the client its metadata document describes. A fetch is charged
// to the source withSource put in ctx; without one, to a source of its own
// that every such caller shares.
func (s *Server) lookupClient(ctx context.Context, id string) (*Client, error) {
	if id == "" {
		return nil, errUnknownClient
	}
	if strings.HasPrefix(id, "https://") {
		if s.cfg.MetadataDocuments.Disabled {
			return nil, errUnknownClient
		}
		src, ok := ctx.Value(sourceKey{}).(fetchSource)
		if !ok {
			src = fetchSource{key: "unknown", limited: true}
		}
		return s.docs.client(ctx, src, id)
	}
	if c := s.clients.get(id, s.now()); c != nil {
		return c, nil
	}
	c, err := s.store.ClientByID(ctx, id)
	if epicme.ErrorCode(err) == epicme.ENOTFOUND {
		return nil, errUnknownClient
	}
	if err != nil {
		return nil, err
	}
	s.clients.put(id, c, s.now())
	return c, nil
}

// clientCache keeps stored clients for a moment: the token and
// introspection endpoints read the client on every request. A client
// removed by another process (epicme client remove) stops authenticating
// within clientCacheTTL, as its tokens stop verifying within the
// revocation list's sync interval.
type clientCache struct{ c *lru.Cache[string, *Client] }

const clientCacheTTL = 2 * time.Second

func newClientCache() clientCache { return clientCache{lru.New[string, *Client](10_000)} }

func (cc clientCache) get(id string, now time.Time) *Client {
	c, _ := cc.c.Get(id, now)
	return c
}

func (cc clientCache) put(id string, c *Client, now time.Time) {
	cc.c.Put(id, c, now.Add(clientCacheTTL))
}

func (cc clientCache) forget(id string) { cc.c.Remove(id) }

// authenticateClient authenticates the client of a token, introspection or
// revocation request (RFC 6749 §2.3.1): client_secret_basic,
// client_secret_post, private_key_jwt (RFC 7523 §2.2) or, for public
// clients, none (client_id alone).
func (s *Server) authenticateClient(r *http.Request) (*Client, *oauthError) {
	formID, formSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if len(r.PostForm["client_id"]) > 1 || len(r.PostForm["client_secret"]) > 1 {
		return nil, oerr(http.StatusBadRequest, errInvalidRequest, "client_id and client_secret may appear once")
	}
	if r.PostForm.Has("client_assertion") || r.PostForm.Has("client_assertion_type") {
		// RFC 6749 §2.3: one authentication method per request.
		if formSecret != "" || r.Header.Get("Authorization") != "" {
			return nil, oerr(http.StatusBadRequest, errInvalidRequest, "use only one client authentication method")
		}
		return s.assertionClient(r, formID)
	}
	var id, secret string
	basic := false
	if h := r.Header.Get("Authorization"); h != "" {
		basic = true
		bad := &oauthError{Status: http.StatusUnauthorized, Code: errInvalidClient, Description: "malformed Basic credentials", basic: true}
		scheme, cred, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Basic") {
			return nil, bad
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return nil, bad
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, bad
		}
		// RFC 6749 §2.3.1 form-encodes both parts; some clients do not.
		// Our ids and secrets are URL-safe, so decoding changes nothing for
		// them either way.
		if d, err := url.QueryUnescape(u); err == nil {
			u = d
		}
		if d, err := url.QueryUnescape(p); err == nil {
			p = d
		}
		if formSecret != "" {
			return nil, oerr(http.StatusBadRequest, errInvalidRequest, "use only one client authentication method")
		}
		if formID != "" && formID != u {
			return nil, oerr(http.StatusBadRequest, errInvalidRequest, "client_id differs from the Basic credentials")
		}
		id, secret = u, p
	} else {
		id, secret = formID, formSecret
	}
	fail := &oauthError{Status: http.StatusUnauthorized, Code: errInvalidClient, Description: "client authentication failed", basic: basic}
	if id == "" {
		fail.Description = "client_id is required"
		return nil, fail
	}
	c, err := s.lookupClient(s.withSource(r), id)
	if err != nil {
		if !errors.Is(err, errUnknownClient) && !errors.Is(err, errMetadataDocument) {
			return nil, internalErr(fmt.Errorf("looking up client: %w", err))
		}
		return nil, fail
	}
	if c.Public() {
		if secret != "" {
			fail.Description = "this client is public and has no secret"
			return nil, fail
		}
		return c, nil
	}
	if c.AuthMethod == AuthPrivateKeyJWT {
		fail.Description = "this client authenticates with private_key_jwt: send a client_assertion"
		return nil, fail
	}
	if secret == "" || !s.secrets.equal(secret, c.SecretHash) {
		return nil, fail
	}
	return c, nil
}

// redirectAllowed reports whether requested is one of the client's redirect
// URIs: an exact string match (OAuth 2.1 §2.3.1), except that for an http
// loopback redirect URI any port is accepted (RFC 8252 §7.3), since native
// apps listen on whatever port is free.
func redirectAllowed(registered []string, requested string) bool {
	if slices.Contains(registered, requested) {
		return true
	}
	req, err := url.Parse(requested)
	if err != nil || req.Scheme != "http" || !isLoopbackHost(req.Hostname()) || req.User != nil || req.Fragment != "" {
		return false
	}
	for _, r := range registered {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "http" || u.User != nil {
			continue
		}
		if strings.EqualFold(u.Hostname(), req.Hostname()) && u.EscapedPath() == req.EscapedPath() && u.RawQuery == req.RawQuery {
			return true
		}
	}
	return false
}

// checkRedirectURI applies the registration rules for redirect URIs: an
// absolute URL without fragment; https, or http only on loopback (OAuth 2.1
// §2.3.1); or a private-use scheme of a native app (RFC 8252 §7.1), never
// one a browser would run or read locally.
func checkRedirectURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("redirect URI %q is not an absolute URL", s)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("redirect URI %q must not have a fragment", s)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("redirect URI %q has no host", s)
		}
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("redirect URI %q: http is allowed only for loopback addresses", s)
		}
	case "javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "ws", "wss":
		return fmt.Errorf("redirect URI %q uses a forbidden scheme", s)
	}
	if u.User != nil {
		return fmt.Errorf("redirect URI %q must not carry credentials", s)
	}
	return nil
}

// NewClient is the input to [AddClient].
type NewClient struct {
	Name         string
	RedirectURIs []string
	// Confidential clients get a secret; public ones use PKCE alone.
	Confidential bool
	// ResourceServer lets the client introspect tokens issued for
	// Resource; it implies Confidential.
	ResourceServer bool
	Resource       string
	Scope          string
	// ActsAs makes a machine client: the id of the one user whose journal
	// it reaches, by the client credentials grant, with at most Scope
	// (required). It implies Confidential and takes no redirect URIs.
	ActsAs string
	// JWKS, for a machine client, is the JSON Web Key Set of the public
	// keys it signs its assertions with (private_key_jwt), or JWKSURI
	// where the server fetches it; without either the client gets a
	// secret.
	JWKS, JWKSURI string
	// MaxPerUser, for a machine client, bounds the machine clients ActsAs
	// may hold, this one included (0: no bound; the operator's command
	// sets none).
	MaxPerUser int
}

// AddClient pre-registers a client (the operator's `epicme client add`)
// and returns it with its secret, which is shown once and stored only as a
// keyed hash.
func AddClient(ctx context.Context, store Store, kek []byte, in NewClient, now time.Time) (*Client, string, error) {
	if len(kek) != KEKSize {
		return nil, "", fmt.Errorf("authserver: the key-encryption key must be %d bytes", KEKSize)
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 100 {
		return nil, "", epicme.Invalid("name", "client name is required and must be at most 100 characters")
	}
	if in.ActsAs != "" {
		return addMachineClient(ctx, store, kek, in, now)
	}
	if in.JWKS != "" || in.JWKSURI != "" {
		return nil, "", epicme.Invalid("jwks", "only a machine client (acting for a user) registers keys")
	}
	if in.ResourceServer {
		in.Confidential = true
		if in.Resource == "" {
			return nil, "", epicme.Invalid("resource", "a resource server client needs the URL of its resource")
		}
	} else if len(in.RedirectURIs) == 0 {
		return nil, "", epicme.Invalid("redirect_uri", "at least one redirect URI is required")
	}
	for _, u := range in.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, "", epicme.Invalid("redirect_uri", "%v", err)
		}
	}
	c := &Client{
		ID:             newClientID(),
		Kind:           ClientPreregistered,
		Name:           in.Name,
		RedirectURIs:   in.RedirectURIs,
		AuthMethod:     AuthNone,
		GrantTypes:     []string{"authorization_code", "refresh_token"},
		Scope:          in.Scope,
		ResourceServer: in.ResourceServer,
		Resource:       in.Resource,
		CreatedAt:      now,
	}
	var secret string
	if in.Confidential {
		secret = randomToken(32)
		c.SecretHash = secretHasher{key: subkey(kek, "client secrets")}.hash(secret)
		c.AuthMethod = AuthClientSecretBasic
	}
	if err := store.CreateClient(ctx, c); err != nil {
		return nil, "", err
	}
	return c, secret, nil
}

// registrationRequest is the client metadata of RFC 7591 §2.
type registrationRequest struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	Contacts                []string `json:"contacts,omitempty"`
	SoftwareID              string   `json:"software_id,omitempty"`
	SoftwareVersion         string   `json:"software_version,omitempty"`
}

// registrationResponse is RFC 7591 §3.2.1.
type registrationResponse struct {
	ClientID              string `json:"client_id"`
	ClientSecret          string `json:"client_secret,omitempty"`
	ClientIDIssuedAt      int64  `json:"client_id_issued_at"`
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
	registrationRequest
}

// validate applies defaults (RFC 7591 §2) and the server's rules.
func (m *registrationRequest) validate(supported []string) *oauthError {
	bad := func(code, format string, args ...any) *oauthError {
		return oerr(http.StatusBadRequest, code, fmt.Sprintf(format, args...))
	}
	if len(m.RedirectURIs) == 0 {
		return bad(errInvalidRedirectURI, "redirect_uris is required")
	}
	if len(m.RedirectURIs) > 10 {
		return bad(errInvalidRedirectURI, "at most 10 redirect_uris are allowed")
	}
	for _, u := range m.RedirectURIs {
		if len(u) > 2000 {
			return bad(errInvalidRedirectURI, "redirect URI longer than 2000 characters")
		}
		if err := checkRedirectURI(u); err != nil {
			return bad(errInvalidRedirectURI, "%v", err)
		}
	}
	switch m.TokenEndpointAuthMethod {
	case "":
		m.TokenEndpointAuthMethod = AuthClientSecretBasic
	case AuthNone, AuthClientSecretBasic, AuthClientSecretPost:
	default:
		return bad(errInvalidClientMetadata, "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
	}
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{"authorization_code"}
	}
	for _, g := range m.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return bad(errInvalidClientMetadata, "grant type %q is not supported; use authorization_code and refresh_token", g)
		}
	}
	if !slices.Contains(m.GrantTypes, "authorization_code") {
		return bad(errInvalidClientMetadata, "grant_types must include authorization_code")
	}
	if len(m.ResponseTypes) == 0 {
		m.ResponseTypes = []string{"code"}
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			return bad(errInvalidClientMetadata, "response type %q is not supported; use code", rt)
		}
	}
	if _, unknown := normalizeScopes(supported, m.Scope); len(unknown) > 0 {
		return bad(errInvalidClientMetadata, "unknown scope %q", unknown[0])
	}
	m.ClientName = strings.TrimSpace(m.ClientName)
	if len(m.ClientName) > 100 || len(m.SoftwareID) > 200 || len(m.SoftwareVersion) > 100 || len(m.Contacts) > 5 {
		return bad(errInvalidClientMetadata, "client_name, software_id, software_version or contacts too long")
	}
	for name, u := range map[string]string{"client_uri": m.ClientURI, "logo_uri": m.LogoURI} {
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || len(u) > 2000 {
			return bad(errInvalidClientMetadata, "%s must be an http(s) URL", name)
		}
	}
	return nil
}

// refuseRegistration answers a registration refused for its source's
// allowance: 429 with Retry-After (RFC 6585 §4). RFC 7591 §3.2.2 defines
// no code for a refusal of this kind; of its four codes,
// invalid_client_metadata is the one whose meaning ("the server has
// rejected this request") does not name something the request could fix
// (a redirect URI, a software statement), and the one registration clients
// already handle. The status, Retry-After and the description say why.
func (s *Server) refuseRegistration(w http.ResponseWriter, r *http.Request, retry time.Duration, desc string) {
	w.Header().Set("Retry-After", fmt.Sprint(int(retry.Seconds())))
	s.writeOAuthError(w, r, oerr(http.StatusTooManyRequests, errInvalidClientMetadata, desc))
}

// serveRegister is the client registration endpoint (RFC 7591 §3).
func (s *Server) serveRegister(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Registration.Disabled {
		http.NotFound(w, r)
		return
	}
	ctx := r.Context()
	now := s.now()
	lim := s.cfg.Registration
	key, aggregate, limited := s.sourceKeys(r)
	// Count before reading the body, so that even malformed requests use up
	// a source's allowance.
	if limited {
		ok, err := s.countSource(ctx, "register", key, aggregate, lim.Window, lim.PerSource)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		if !ok {
			s.refuseRegistration(w, r, lim.Window, "too many registrations from this source; try again later")
			return
		}
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		s.writeOAuthError(w, r, oerr(http.StatusBadRequest, errInvalidClientMetadata, "the request body must be JSON (Content-Type: application/json)"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<10))
	if err != nil {
		s.writeOAuthError(w, r, oerr(http.StatusBadRequest, errInvalidClientMetadata, "the request body is too large or unreadable"))
		return
	}
	var m registrationRequest
	if err := json.Unmarshal(body, &m); err != nil {
		s.writeOAuthError(w, r, oerr(http.StatusBadRequest, errInvalidClientMetadata, "the request body is not valid client metadata JSON"))
		return
	}
	if e := m.validate(s.scopes); e != nil {
		s.writeOAuthError(w, r, e)
		return
	}
	if limited {
		ok, err := s.countSource(ctx, "register-held", key, aggregate, lim.UnusedTTL, lim.HeldPerSource)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		if !ok {
			s.refuseRegistration(w, r, lim.UnusedTTL, "this source has registered as many clients as it may hold; use one of them, or try again later")
			return
		}
	}
	count, err := s.store.CountDynamicClients(ctx)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if count >= lim.MaxClients {
		if _, err := s.store.DeleteUnusedDynamicClients(ctx, now.Add(-lim.UnusedTTL)); err != nil {
			s.internal(w, r, err)
			return
		}
		if count, err = s.store.CountDynamicClients(ctx); err != nil {
			s.internal(w, r, err)
			return
		}
		if count >= lim.MaxClients {
			s.log.WarnContext(ctx, "dynamic client registration refused: the cap is reached", "max", lim.MaxClients)
			w.Header().Set("Retry-After", "3600")
			// invalid_client_metadata: see refuseRegistration.
			s.writeOAuthError(w, r, oerr(http.StatusServiceUnavailable, errInvalidClientMetadata, "no more clients can be registered now"))
			return
		}
	}
	c := &Client{
		ID:              newClientID(),
		Kind:            ClientDynamic,
		Name:            m.ClientName,
		RedirectURIs:    m.RedirectURIs,
		AuthMethod:      m.TokenEndpointAuthMethod,
		GrantTypes:      m.GrantTypes,
		Scope:           m.Scope,
		ClientURI:       m.ClientURI,
		LogoURI:         m.LogoURI,
		Contacts:        m.Contacts,
		SoftwareID:      m.SoftwareID,
		SoftwareVersion: m.SoftwareVersion,
		RegisteredFrom:  s.sourceOf(r),
		CreatedAt:       now,
	}
	resp := registrationResponse{ClientID: c.ID, ClientIDIssuedAt: now.Unix(), registrationRequest: m}
	if m.TokenEndpointAuthMethod != AuthNone {
		resp.ClientSecret = randomToken(32)
		c.SecretHash = s.secrets.hash(resp.ClientSecret)
		var never int64
		resp.ClientSecretExpiresAt = &never
	}
	if err := s.store.CreateClient(ctx, c); err != nil {
		s.internal(w, r, err)
		return
	}
	s.clients.forget(c.ID)
	s.log.InfoContext(ctx, "client registered", "client_id", c.ID, "name", c.Name, "source", c.RegisteredFrom)
	writeJSON(w, http.StatusCreated, resp)
}
