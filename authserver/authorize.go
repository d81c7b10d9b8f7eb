package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/epicme/epicme"
)

// authzRequest is a validated authorization request (RFC 6749 §4.1.1 with
// PKCE, RFC 7636 §4.3, and resource indicators, RFC 8707 §2).
type authzRequest struct {
	client        *Client
	redirectURI   string
	redirectGiven bool
	state         string
	challenge     string
	dpopJKT       string // RFC 9449 §10: the key the code is bound to
	resource      string
	scope         string
	prompt        string
	// raw is the request's query string, carried through the sign-in and
	// consent forms and validated again on each step.
	raw string
}

// authzError is an error answered by redirecting to the client (RFC 6749
// §4.1.2.1).
type authzError struct {
	code, desc string
}

// pageError is an error shown to the user because the client or redirect
// URI cannot be trusted with a redirect.
type pageError struct {
	status int
	msg    string
}

// parseAuthorize validates an authorization request. Errors about the
// client or the redirect URI come back as a *pageError; any other error as
// an *authzError together with the request, whose redirect URI is then
// known to be good.
func (s *Server) parseAuthorize(ctx context.Context, q url.Values) (*authzRequest, *pageError, *authzError) {
	for _, p := range []string{"client_id", "redirect_uri"} {
		if len(q[p]) > 1 {
			return nil, &pageError{http.StatusBadRequest, p + " appears more than once"}, nil
		}
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		return nil, &pageError{http.StatusBadRequest, "The request has no client_id."}, nil
	}
	c, err := s.lookupClient(ctx, clientID)
	if err != nil {
		var de *docError
		switch {
		case errors.As(err, &de):
			return nil, &pageError{http.StatusBadRequest, "The application's metadata document cannot be used: " + de.reason + "."}, nil
		case errors.Is(err, errUnknownClient):
			return nil, &pageError{http.StatusBadRequest, "The application is not registered with this server (unknown client_id)."}, nil
		default:
			s.log.ErrorContext(ctx, "looking up client", "err", err)
			return nil, &pageError{http.StatusInternalServerError, "Internal error."}, nil
		}
	}
	a := &authzRequest{client: c, raw: q.Encode()}
	a.redirectURI = q.Get("redirect_uri")
	if a.redirectURI == "" {
		// OAuth 2.1 §4.1.1: optional when the client has exactly one.
		if len(c.RedirectURIs) != 1 {
			return nil, &pageError{http.StatusBadRequest, "The request has no redirect_uri."}, nil
		}
		a.redirectURI = c.RedirectURIs[0]
	} else {
		a.redirectGiven = true
		if !redirectAllowed(c.RedirectURIs, a.redirectURI) {
			return nil, &pageError{http.StatusBadRequest, "The redirect_uri is not registered for this application."}, nil
		}
	}
	a.state = q.Get("state")
	for _, p := range []string{"response_type", "state", "code_challenge", "code_challenge_method", "scope", "prompt", "dpop_jkt"} {
		if len(q[p]) > 1 {
			return a, nil, &authzError{errInvalidRequest, p + " appears more than once"}
		}
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return a, nil, &authzError{errInvalidRequest, "response_type is required"}
	default:
		return a, nil, &authzError{errUnsupportedResponseType, "only response_type=code is supported"}
	}
	if !contains(c.GrantTypes, "authorization_code") {
		return a, nil, &authzError{errUnauthorizedClient, "this client may not use the authorization code grant"}
	}
	// PKCE is required, and only S256 (OAuth 2.1 §4.1.1, RFC 7636 §4.2):
	// a missing method means plain, which is refused.
	a.challenge = q.Get("code_challenge")
	if a.challenge == "" {
		return a, nil, &authzError{errInvalidRequest, "code_challenge is required (PKCE with S256)"}
	}
	if m := q.Get("code_challenge_method"); m != "S256" {
		return a, nil, &authzError{errInvalidRequest, "code_challenge_method must be S256"}
	}
	if !validChallenge(a.challenge) {
		return a, nil, &authzError{errInvalidRequest, "code_challenge must be 43 base64url characters (the S256 of the verifier)"}
	}
	// RFC 9449 §10: a client may bind the code to its DPoP key; the token
	// request must then carry a proof by that key.
	if j := q.Get("dpop_jkt"); j != "" {
		if !validChallenge(j) {
			return a, nil, &authzError{errInvalidRequest, "dpop_jkt must be the 43-character base64url SHA-256 thumbprint of the DPoP key (RFC 9449 §10)"}
		}
		a.dpopJKT = j
	}
	a.resource = s.resource
	for _, res := range q["resource"] {
		if !sameResource(res, s.resource) {
			return a, nil, &authzError{errInvalidTarget, "this server issues tokens only for " + s.resource}
		}
	}
	scope, e := s.requestedScope(c, q.Get("scope"))
	if e != nil {
		return a, nil, &authzError{e.Code, e.Description}
	}
	a.scope = scope
	a.prompt = q.Get("prompt")
	return a, nil, nil
}

// requestedScope checks a requested scope against the server's scopes and
// the client's registered ones; an absent scope means all the client may
// ask for.
func (s *Server) requestedScope(c *Client, requested string) (string, *oauthError) {
	allowed := strings.Join(s.scopes, " ")
	if c.Scope != "" {
		allowed, _ = normalizeScopes(s.scopes, c.Scope)
	}
	if strings.TrimSpace(requested) == "" {
		return allowed, nil
	}
	var want []string
	for _, sc := range strings.Fields(requested) {
		// offline_access is how some clients ask for a refresh token;
		// this server gives one to every client that registered the
		// refresh_token grant, so the scope adds nothing.
		if sc != "offline_access" {
			want = append(want, sc)
		}
	}
	scope, unknown := normalizeScopes(s.scopes, strings.Join(want, " "))
	if len(unknown) > 0 {
		return "", oerr(http.StatusBadRequest, errInvalidScope, "unknown scope "+unknown[0])
	}
	if !subsetScopes(scope, allowed) {
		return "", oerr(http.StatusBadRequest, errInvalidScope, "the client may not ask for scope "+scope)
	}
	if scope == "" {
		return "", oerr(http.StatusBadRequest, errInvalidScope, "no scope requested")
	}
	return scope, nil
}

func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// redirect sends the browser back to the client with params, state and iss
// (RFC 9207 §2) added to the redirect URI's own query.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, a *authzRequest, params url.Values) {
	u, err := url.Parse(a.redirectURI)
	if err != nil {
		s.showError(w, r, http.StatusBadRequest, "The redirect_uri is not a valid URL.")
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if a.state != "" {
		q.Set("state", a.state)
	}
	q.Set("iss", s.issuer)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, a *authzRequest, e *authzError) {
	s.redirect(w, r, a, url.Values{"error": {e.code}, "error_description": {e.desc}})
}

// authorizeStep validates the request carried by q and, when it is good,
// returns it; otherwise it has answered.
func (s *Server) authorizeStep(w http.ResponseWriter, r *http.Request, q url.Values) *authzRequest {
	a, pe, ae := s.parseAuthorize(s.withSource(r), q)
	if pe != nil {
		s.showError(w, r, pe.status, pe.msg)
		return nil
	}
	if ae != nil {
		s.redirectError(w, r, a, ae)
		return nil
	}
	return a
}

// serveAuthorize is the authorization endpoint (RFC 6749 §3.1).
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	a := s.authorizeStep(w, r, r.URL.Query())
	if a == nil {
		return
	}
	user := s.sessionUser(r)
	if user == nil || a.prompt == "login" {
		if a.prompt == "none" {
			s.redirectError(w, r, a, &authzError{"login_required", "the user is not signed in"})
			return
		}
		s.showSignIn(w, r, a, http.StatusOK, "", "")
		return
	}
	s.consentOrCode(w, r, a, user)
}

// consentOrCode issues a code at once when the user already consented to
// everything asked, and shows the consent page otherwise.
func (s *Server) consentOrCode(w http.ResponseWriter, r *http.Request, a *authzRequest, user *epicme.User) {
	if a.prompt != "consent" {
		c, err := s.store.Consent(r.Context(), user.ID, a.client.ID)
		if err == nil && subsetScopes(a.scope, c.Scope) {
			s.issueCode(w, r, a, user, a.scope)
			return
		}
		if err != nil && epicme.ErrorCode(err) != epicme.ENOTFOUND {
			s.log.ErrorContext(r.Context(), "reading consent", "err", err)
			s.showError(w, r, http.StatusInternalServerError, "Internal error.")
			return
		}
	}
	if a.prompt == "none" {
		s.redirectError(w, r, a, &authzError{"consent_required", "the user has not consented to this client"})
		return
	}
	s.showConsent(w, r, a, user)
}

func clientDisplayName(c *Client) string {
	if c.Name != "" {
		return visible(c.Name)
	}
	if c.Kind == ClientMetadataDoc {
		if u, err := url.Parse(c.ID); err == nil {
			return u.Host
		}
	}
	return "An unnamed application"
}

// visible returns s with every control, format (bidi overrides and
// isolates, zero-width joiners and spaces) and line or paragraph separator
// character written as a visible \uXXXX escape: a name a client chose
// itself must read on the page as it was registered (Unicode Technical
// Report #36, "Bidirectional Text Spoofing"; RFC 7591 §5, client_name is
// shown to the user).
func visible(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			fmt.Fprintf(&b, "\\u%04X", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// showSignIn shows the sign-in form, for an authorization request a or,
// when a is nil, for the account pages (next is where to go after).
func (s *Server) showSignIn(w http.ResponseWriter, r *http.Request, a *authzRequest, status int, email, msg string) {
	s.showSignInPage(w, r, a, status, email, msg, "", "")
}

func (s *Server) showSignInPage(w http.ResponseWriter, r *http.Request, a *authzRequest, status int, email, msg, notice, next string) {
	name, raw := "", ""
	if a != nil {
		name, raw = clientDisplayName(a.client), a.raw
		allowRedirectTo(w, a.redirectURI)
	}
	signUp := ""
	if s.cfg.AllowSignUp {
		signUp = SignUpPath
		if raw != "" {
			signUp += "?" + url.Values{"request": {raw}}.Encode()
		}
	}
	if status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "60")
	}
	s.render(w, r, status, s.pages.signIn, map[string]any{
		"Title":      "Sign in",
		"ClientName": name,
		"Action":     SignInPath,
		"CSRF":       s.ensureCSRF(w, r),
		"Request":    raw,
		"Next":       next,
		"Email":      email,
		"Error":      msg,
		"Notice":     notice,
		"SignUpURL":  signUp,
	})
}

type scopeItem struct{ Name, Description string }

func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, a *authzRequest, user *epicme.User) {
	var items []scopeItem
	for _, sc := range strings.Fields(a.scope) {
		d := epicme.ScopeDescriptions[sc]
		if d == "" {
			d = sc
		}
		items = append(items, scopeItem{sc, d})
	}
	redirectHost := a.redirectURI
	if u, err := url.Parse(a.redirectURI); err == nil && u.Host != "" {
		redirectHost = u.Host
	}
	docHost := ""
	if a.client.Kind == ClientMetadataDoc {
		if u, err := url.Parse(a.client.ID); err == nil {
			docHost = u.Host
		}
	}
	allowRedirectTo(w, a.redirectURI)
	s.render(w, r, http.StatusOK, s.pages.consent, map[string]any{
		"Title":        "Allow access?",
		"Email":        user.Email,
		"ClientName":   clientDisplayName(a.client),
		"Unverified":   a.client.Kind != ClientPreregistered,
		"RedirectHost": redirectHost,
		"DocumentHost": docHost,
		"LoopbackOnly": loopbackOnly(a.client),
		"Action":       ConsentPath,
		"CSRF":         s.ensureCSRF(w, r),
		"Request":      a.raw,
		"ConsentToken": s.cookies.consentToken(user.ID, a.raw, s.now().Add(consentFormTTL)),
		"Scopes":       items,
	})
}

// consentFormTTL is how long a consent page may stay open before its
// answer is refused.
const consentFormTTL = 30 * time.Minute

// loopbackOnly reports whether every redirect URI of the client is on the
// user's own machine (RFC 8252 §7.3): such a client is a program the user
// runs, and nothing vouches for its name.
func loopbackOnly(c *Client) bool {
	if len(c.RedirectURIs) == 0 {
		return false
	}
	for _, ru := range c.RedirectURIs {
		u, err := url.Parse(ru)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !isLoopbackHost(u.Hostname()) {
			return false
		}
	}
	return true
}

// parsePageForm reads a posted form of the pages and checks its CSRF token;
// it answers and returns false when either fails.
func (s *Server) parsePageForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.showError(w, r, http.StatusBadRequest, "The form could not be read.")
		return false
	}
	if !s.checkCSRF(r) {
		s.showError(w, r, http.StatusForbidden, "The form has expired or did not come from this site. Go back to the application and start again.")
		return false
	}
	return true
}

// formRequest parses a posted form of the sign-in or consent page and
// checks its CSRF token; it returns the authorization request the form
// carries, or nil after answering.
func (s *Server) formRequest(w http.ResponseWriter, r *http.Request) *authzRequest {
	if !s.parsePageForm(w, r) {
		return nil
	}
	return s.carriedRequest(w, r)
}

// carriedRequest validates again the authorization request a form carries.
func (s *Server) carriedRequest(w http.ResponseWriter, r *http.Request) *authzRequest {
	q, err := url.ParseQuery(r.PostForm.Get("request"))
	if err != nil {
		s.showError(w, r, http.StatusBadRequest, "The form carries a malformed request.")
		return nil
	}
	return s.authorizeStep(w, r, q)
}

// serveConsent records the user's decision and, if they allowed some
// scopes, issues a code for those.
func (s *Server) serveConsent(w http.ResponseWriter, r *http.Request) {
	a := s.formRequest(w, r)
	if a == nil {
		return
	}
	user := s.sessionUser(r)
	if user == nil {
		s.showSignIn(w, r, a, http.StatusUnauthorized, "", "Your session has ended. Sign in again.")
		return
	}
	// The form must be the one shown to this user for this very request:
	// a consent page of one client cannot approve another's request.
	if !s.cookies.checkConsentToken(r.PostForm.Get("consent"), user.ID, r.PostForm.Get("request"), s.now()) {
		s.showError(w, r, http.StatusForbidden, "This answer does not match the request it was shown for, or the page was open too long. Go back to the application and start again.")
		return
	}
	if r.PostForm.Get("decision") != "allow" {
		s.redirectError(w, r, a, &authzError{errAccessDenied, "the user denied access"})
		return
	}
	granted, _ := normalizeScopes(strings.Fields(a.scope), strings.Join(r.PostForm["scope"], " "))
	if granted == "" {
		s.redirectError(w, r, a, &authzError{errAccessDenied, "the user granted no scope"})
		return
	}
	now := s.now()
	if err := s.store.SaveConsent(r.Context(), &Consent{UserID: user.ID, ClientID: a.client.ID, Scope: granted, CreatedAt: now, UpdatedAt: now}); err != nil {
		s.log.ErrorContext(r.Context(), "saving consent", "err", err)
		s.showError(w, r, http.StatusInternalServerError, "Internal error.")
		return
	}
	s.issueCode(w, r, a, user, granted)
}

// issueCode stores a code bound to the client, redirect URI, challenge,
// resource and scope, and redirects with it (RFC 6749 §4.1.2).
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, a *authzRequest, user *epicme.User, scope string) {
	code := randomToken(32)
	now := s.now()
	err := s.store.CreateCode(r.Context(), &AuthCode{
		Hash:          HashToken(code),
		ClientID:      a.client.ID,
		UserID:        user.ID,
		RedirectURI:   a.redirectURI,
		RedirectGiven: a.redirectGiven,
		CodeChallenge: a.challenge,
		DPoPJKT:       a.dpopJKT,
		Resource:      a.resource,
		Scope:         scope,
		CreatedAt:     now,
		ExpiresAt:     now.Add(s.cfg.CodeTTL),
	})
	if err != nil {
		s.log.ErrorContext(r.Context(), "storing code", "err", err)
		s.redirectError(w, r, a, &authzError{errServerError, "internal error"})
		return
	}
	s.redirect(w, r, a, url.Values{"code": {code}})
}
