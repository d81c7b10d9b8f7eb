package authserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// randomToken returns n random bytes, base64url-encoded: URL-safe, so that
// clients that send client_secret_basic without form-encoding (as some do)
// still send it intact.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken is how codes, refresh tokens and token keys are stored: the hex
// SHA-256 of the token. The tokens carry 256 random bits, so a fast
// unkeyed hash is enough to make a stolen database useless.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// secretHasher hashes client secrets with HMAC-SHA256 under a server key.
// Secrets are high-entropy random strings, so a slow password hash would
// only slow the token endpoint; the key makes a leaked table useless on its
// own.
type secretHasher struct{ key []byte }

func (h secretHasher) hash(secret string) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(secret))
	return hex.EncodeToString(m.Sum(nil))
}

func (h secretHasher) equal(secret, stored string) bool {
	if stored == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(h.hash(secret)), []byte(stored)) == 1
}

// OAuth error codes (RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2,
// RFC 7009 §2.2.1, RFC 8707 §2).
const (
	errInvalidRequest          = "invalid_request"
	errInvalidClient           = "invalid_client"
	errInvalidGrant            = "invalid_grant"
	errUnauthorizedClient      = "unauthorized_client"
	errUnsupportedGrantType    = "unsupported_grant_type"
	errInvalidScope            = "invalid_scope"
	errInvalidTarget           = "invalid_target"
	errAccessDenied            = "access_denied"
	errUnsupportedResponseType = "unsupported_response_type"
	errServerError             = "server_error"
	errTemporarilyUnavailable  = "temporarily_unavailable"
	errInvalidRedirectURI      = "invalid_redirect_uri"
	errInvalidClientMetadata   = "invalid_client_metadata"
	errUnsupportedTokenType    = "unsupported_token_type"
)

// oauthError is an error response of the token, registration, introspection
// or revocation endpoint.
type oauthError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// basic asks for a Basic challenge (RFC 6749 §5.2: invalid_client when
	// the client tried the Authorization header).
	basic bool
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func oerr(status int, code, desc string) *oauthError {
	return &oauthError{Status: status, Code: code, Description: desc}
}

// writeJSON writes v with the headers every OAuth endpoint answer needs
// (RFC 6749 §5.1: Cache-Control: no-store).
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeOAuthError answers with e (RFC 6749 §5.2). A 500 is the server's
// own failure: it is logged, and the client is told only that it happened.
func (s *Server) writeOAuthError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	if e.Status == http.StatusInternalServerError {
		s.log.ErrorContext(r.Context(), "authorization server error", "path", r.URL.Path, "err", e.Description)
		e = oerr(http.StatusInternalServerError, errServerError, "internal error")
	}
	if e.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="EpicMe", charset="UTF-8"`)
	}
	writeJSON(w, e.Status, e)
}

// cors lets browser-based clients call an endpoint that takes no cookies
// (metadata, JWKS, token, registration, revocation): any origin may, and
// credentials are never allowed, so this opens nothing a browser session
// could be tricked into.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After, DPoP-Nonce")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version, DPoP")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// scopeSet helpers. Scopes keep the order of the server's list so that
// stored and issued scope strings are canonical.
func normalizeScopes(supported []string, s string) (string, []string) {
	want := strings.Fields(s)
	var out, unknown []string
	for _, sc := range supported {
		for _, w := range want {
			if w == sc {
				out = append(out, sc)
				break
			}
		}
	}
	for _, w := range want {
		found := false
		for _, sc := range supported {
			if w == sc {
				found = true
				break
			}
		}
		if !found {
			unknown = append(unknown, w)
		}
	}
	return strings.Join(out, " "), unknown
}

// subsetScopes reports whether every scope of a is in b.
func subsetScopes(a, b string) bool {
	bs := strings.Fields(b)
	for _, x := range strings.Fields(a) {
		found := false
		for _, y := range bs {
			if x == y {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// writeJSONRaw writes v as JSON, leaving caching headers to the caller.
func writeJSONRaw(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func unixTime(sec int64) time.Time { return time.Unix(sec, 0) }
