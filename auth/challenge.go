package auth

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Error codes of RFC 6750 §3.1.
const (
	ErrorInvalidRequest    = "invalid_request"
	ErrorInvalidToken      = "invalid_token"
	ErrorInsufficientScope = "insufficient_scope"
)

// Challenge is one Bearer challenge of a WWW-Authenticate header (RFC 6750
// §3, RFC 9728 §5.1 for resource_metadata). Empty fields are left out.
type Challenge struct {
	// Scheme is the authentication scheme: "" means Bearer; "DPoP" for
	// RFC 9449 §7.1.
	Scheme string
	// Algs lists the accepted DPoP proof algorithms (RFC 9449 §7.1).
	Algs             string
	Realm            string
	ResourceMetadata string
	// Scope is a space-separated list of scopes (RFC 6749 §3.3).
	Scope            string
	Error            string
	ErrorDescription string
}

// String renders the challenge as a WWW-Authenticate field value. Every value
// is quoted and first sanitised to the characters RFC 6750 §3 allows in
// quoted values (printable ASCII without '"' and '\'), so the output always
// parses back into c.Sanitized() (the tests read it with the Go SDK's
// client parser).
func (c Challenge) String() string {
	c = c.Sanitized()
	var b strings.Builder
	b.Grow(32 + len(c.Realm) + len(c.ResourceMetadata) + len(c.Scope) + len(c.Error) + len(c.ErrorDescription))
	if c.Scheme == "" {
		b.WriteString("Bearer")
	} else {
		b.WriteString(c.Scheme)
	}
	sep := " "
	param := func(name, value string) {
		if value == "" {
			return
		}
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(value)
		b.WriteByte('"')
		sep = ", "
	}
	param("algs", c.Algs)
	param("realm", c.Realm)
	param("resource_metadata", c.ResourceMetadata)
	param("scope", c.Scope)
	param("error", c.Error)
	param("error_description", c.ErrorDescription)
	return b.String()
}

// Sanitized returns c with every value reduced to RFC 6750 §3's character set
// (%x20-21 / %x23-5B / %x5D-7E) and the scope list normalised to single
// spaces.
func (c Challenge) Sanitized() Challenge {
	c.Realm = sanitizeValue(c.Realm)
	c.ResourceMetadata = strings.ReplaceAll(sanitizeValue(c.ResourceMetadata), " ", "")
	c.Scope = sanitizeScope(c.Scope)
	c.Error = sanitizeValue(c.Error)
	c.ErrorDescription = sanitizeValue(c.ErrorDescription)
	return c
}

// sanitizeScope keeps the scope tokens (RFC 6749 §3.3: %x21 / %x23-5B /
// %x5D-7E) separated by single spaces.
func sanitizeScope(s string) string {
	fields := strings.Fields(s)
	out := fields[:0]
	for _, f := range fields {
		if f = sanitizeValue(f); f != "" {
			out = append(out, strings.ReplaceAll(f, " ", ""))
		}
	}
	return strings.Join(out, " ")
}

// sanitizeValue drops every byte outside %x20-21 / %x23-5B / %x5D-7E.
func sanitizeValue(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if !allowedValueByte(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if allowedValueByte(s[i]) {
			b = append(b, s[i])
		}
	}
	return string(b)
}

func allowedValueByte(c byte) bool {
	return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'
}

// WriteChallenge answers with status, one Bearer challenge and, when the
// challenge carries an error, the JSON body {error, error_description}. A 401
// to a request without credentials carries no error information at all, in
// the header or the body (RFC 6750 §3.1).
func WriteChallenge(w http.ResponseWriter, status int, c Challenge) {
	h := w.Header()
	h.Set("WWW-Authenticate", c.String())
	h.Set("Cache-Control", "no-store")
	writeErrorBody(w, status, c.Error, c.ErrorDescription)
}

// writeErrorBody writes {error, error_description} as JSON.
func writeErrorBody(w http.ResponseWriter, status int, code, description string) {
	h := w.Header()
	if code == "" {
		w.WriteHeader(status)
		return
	}
	body, _ := json.Marshal(struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description,omitempty"`
	}{code, sanitizeValue(description)})
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
