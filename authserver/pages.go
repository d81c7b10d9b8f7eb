package authserver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/binary"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed templates/*.html static/style.css
var templateFS embed.FS

// StylePath is where the pages' one stylesheet is served.
const StylePath = "/oauth/static/style.css"

// pages renders the sign-in, sign-up, consent, connected-apps, account and
// error pages. The templates are separate files so that the pages can be
// redesigned without touching the protocol code.
type pages struct {
	signIn, signUp, consent, errorPage, message, apps, account *template.Template

	style     []byte
	styleETag string
}

func loadPages() (*pages, error) {
	parse := func(name string) (*template.Template, error) {
		// The page comes first so that Execute runs it; the layout only
		// defines blocks.
		return template.ParseFS(templateFS, "templates/"+name, "templates/layout.html")
	}
	var p pages
	for _, t := range []struct {
		dst  **template.Template
		name string
	}{
		{&p.signIn, "signin.html"}, {&p.signUp, "signup.html"}, {&p.consent, "consent.html"},
		{&p.errorPage, "error.html"}, {&p.message, "message.html"}, {&p.apps, "apps.html"},
		{&p.account, "account.html"},
	} {
		var err error
		if *t.dst, err = parse(t.name); err != nil {
			return nil, err
		}
	}
	var err error
	if p.style, err = templateFS.ReadFile("static/style.css"); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(p.style)
	p.styleETag = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	return &p, nil
}

// contentSecurityPolicy is the policy of every page: nothing but our own
// stylesheet loads, no script runs, forms post only to us (and, on the
// pages of an authorization, to the client's redirect URI, since browsers
// apply form-action to the redirect that follows a submitted form), and no
// other site may frame the page.
func contentSecurityPolicy(formTarget string) string {
	fa := "'self'"
	if formTarget != "" {
		fa += " " + formTarget
	}
	return "default-src 'none'; style-src 'self'; img-src 'self'; form-action " + fa + "; frame-ancestors 'none'; base-uri 'none'"
}

// cspSource is the CSP source expression (CSP3 §2.3.1) that allows a
// redirect to uri: its origin, or its scheme for a private-use scheme
// (RFC 8252 §7.1).
func cspSource(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	for _, c := range scheme {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return ""
		}
	}
	if scheme != "http" && scheme != "https" {
		return scheme + ":"
	}
	if u.Host == "" || strings.ContainsAny(u.Host, " ;,'\"") {
		return ""
	}
	return scheme + "://" + u.Host
}

// allowRedirectTo lets the forms of this page lead to the client's redirect
// URI.
func allowRedirectTo(w http.ResponseWriter, redirectURI string) {
	if src := cspSource(redirectURI); src != "" {
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy(src))
	}
}

// pageHeaders protects the pages from framing (clickjacking a consent
// button), caching and leaking codes through the Referer header.
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", contentSecurityPolicy(""))
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// serveStyle serves the stylesheet, cacheable and revalidated by ETag.
func (s *Server) serveStyle(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/css; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", s.pages.styleETag)
	if r.Header.Get("If-None-Match") == s.pages.styleETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(s.pages.style)
}

// render executes a page template with data, adding what the layout needs.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, t *template.Template, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	for k, v := range map[string]any{
		"Style": StylePath, "AccountPath": AccountPath, "AppsPath": AppsPath, "SignOutPath": SignOutPath,
	} {
		if _, ok := data[k]; !ok {
			data[k] = v
		}
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		s.log.ErrorContext(r.Context(), "rendering page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// showError shows an error on a page instead of redirecting: used for
// errors about the client or the redirect URI (RFC 6749 §4.1.2.1), when
// redirecting would send the user to an address nobody vouched for.
func (s *Server) showError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, s.pages.errorPage, map[string]any{"Title": "Cannot continue", "Error": msg})
}

// showMessage shows a short page that reports what happened.
func (s *Server) showMessage(w http.ResponseWriter, r *http.Request, title, msg, link, linkText string) {
	s.render(w, r, http.StatusOK, s.pages.message, map[string]any{"Title": title, "Message": msg, "Link": link, "LinkText": linkText})
}

// cookieCodec makes and checks the session and CSRF cookies. Over https
// their names carry the __Host- prefix, so they are Secure, host-only and
// path-wide, and no sibling subdomain can plant one.
type cookieCodec struct {
	key    []byte
	secure bool
}

func (c cookieCodec) name(base string) string {
	if c.secure {
		return "__Host-" + base
	}
	return base
}

func (c cookieCodec) mac(purpose string, b []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(b)
	return m.Sum(nil)
}

func (c cookieCodec) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	return &http.Cookie{
		Name:     c.name(name),
		Value:    value,
		Path:     "/",
		MaxAge:   int(maxAge.Seconds()),
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// expired returns a cookie that deletes the named one.
func (c cookieCodec) expired(name string) *http.Cookie {
	ck := c.cookie(name, "", 0)
	ck.MaxAge = -1
	return ck
}

// csrfToken is the form field that goes with the CSRF cookie: a MAC of the
// cookie's random value (signed double submit), which a cross-site page can
// neither read nor compute.
func (c cookieCodec) csrfToken(cookieValue string) string {
	return base64.RawURLEncoding.EncodeToString(c.mac("csrf", []byte(cookieValue)))
}

// consentToken binds a consent form to the user who saw it and the exact
// authorization request it showed, until exp: a form shown for one client
// cannot approve another client's request, or another user's.
func (c cookieCodec) consentToken(userID, request string, exp time.Time) string {
	e := binary.BigEndian.AppendUint64(nil, uint64(exp.Unix()))
	return b64.EncodeToString(e) + "." + b64.EncodeToString(c.mac("consent", append(append(append(e, userID...), 0), request...)))
}

func (c cookieCodec) checkConsentToken(tok, userID, request string, now time.Time) bool {
	i := strings.IndexByte(tok, '.')
	if i < 0 {
		return false
	}
	e, err1 := b64.DecodeString(tok[:i])
	sig, err2 := b64.DecodeString(tok[i+1:])
	if err1 != nil || err2 != nil || len(e) != 8 {
		return false
	}
	if !hmac.Equal(sig, c.mac("consent", append(append(append(e, userID...), 0), request...))) {
		return false
	}
	return int64(binary.BigEndian.Uint64(e)) >= now.Unix()
}

// ensureCSRF returns the form token for this browser, setting the cookie on
// first use.
func (s *Server) ensureCSRF(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(s.cookies.name("epicme_csrf")); err == nil && len(ck.Value) >= 20 {
		return s.cookies.csrfToken(ck.Value)
	}
	v := randomToken(24)
	http.SetCookie(w, s.cookies.cookie("epicme_csrf", v, 24*time.Hour))
	return s.cookies.csrfToken(v)
}

func (s *Server) checkCSRF(r *http.Request) bool {
	ck, err := r.Cookie(s.cookies.name("epicme_csrf"))
	if err != nil || ck.Value == "" {
		return false
	}
	return hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(s.cookies.csrfToken(ck.Value)))
}
