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
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages renders the sign-in, consent and error pages. The templates are
// separate files so that the pages can be redesigned without touching the
// protocol code.
type pages struct {
	signIn, consent, errorPage, apps *template.Template
}

func loadPages() (*pages, error) {
	parse := func(name string) (*template.Template, error) {
		// The page comes first so that Execute runs it; the layout only
		// defines blocks.
		return template.ParseFS(templateFS, "templates/"+name, "templates/layout.html")
	}
	var p pages
	var err error
	if p.signIn, err = parse("signin.html"); err != nil {
		return nil, err
	}
	if p.consent, err = parse("consent.html"); err != nil {
		return nil, err
	}
	if p.errorPage, err = parse("error.html"); err != nil {
		return nil, err
	}
	if p.apps, err = parse("apps.html"); err != nil {
		return nil, err
	}
	return &p, nil
}

// pageHeaders protects the pages from framing (clickjacking a consent
// button), caching and leaking codes through the Referer header.
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		// No form-action: browsers apply it to the redirect that follows a
		// submitted consent form, which goes to the client's redirect URI.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, t *template.Template, data any) {
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

// session cookie: base64url(expiry(8) || userID) "." base64url(mac).
func (c cookieCodec) sessionValue(userID string, exp time.Time) string {
	payload := binary.BigEndian.AppendUint64(nil, uint64(exp.Unix()))
	payload = append(payload, userID...)
	return b64.EncodeToString(payload) + "." + b64.EncodeToString(c.mac("session", payload))
}

func (c cookieCodec) sessionUserID(v string, now time.Time) string {
	i := bytes.IndexByte([]byte(v), '.')
	if i < 0 {
		return ""
	}
	payload, err1 := b64.DecodeString(v[:i])
	sig, err2 := b64.DecodeString(v[i+1:])
	if err1 != nil || err2 != nil || len(payload) < 9 || !hmac.Equal(sig, c.mac("session", payload)) {
		return ""
	}
	if int64(binary.BigEndian.Uint64(payload[:8])) < now.Unix() {
		return ""
	}
	return string(payload[8:])
}

// csrfToken is the form field that goes with the CSRF cookie: a MAC of the
// cookie's random value (signed double submit), which a cross-site page can
// neither read nor compute.
func (c cookieCodec) csrfToken(cookieValue string) string {
	return base64.RawURLEncoding.EncodeToString(c.mac("csrf", []byte(cookieValue)))
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
