package auth

import (
	"encoding/json"
	"errors"
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
// parses back with [ParseChallenge] into c.Sanitized().
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

// ParseChallenge parses a WWW-Authenticate value holding one Bearer challenge
// whose parameters are auth-params (RFC 9110 §11.2). It accepts token and
// quoted-string values, refuses unknown syntax and repeated parameters, and
// ignores parameters it does not know.
func ParseChallenge(s string) (Challenge, error) {
	var c Challenge
	scheme, rest, _ := strings.Cut(s, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return c, errors.New("not a Bearer challenge")
	}
	seen := map[string]bool{}
	p := rest
	for {
		p = strings.TrimLeft(p, " \t")
		if p == "" {
			break
		}
		i := 0
		for i < len(p) && isTChar(p[i]) {
			i++
		}
		if i == 0 {
			return c, errors.New("expected a parameter name")
		}
		name := strings.ToLower(p[:i])
		p = strings.TrimLeft(p[i:], " \t")
		if p == "" || p[0] != '=' {
			return c, errors.New("expected '=' after " + name)
		}
		p = strings.TrimLeft(p[1:], " \t")
		var value string
		if p != "" && p[0] == '"' {
			var b strings.Builder
			j := 1
			closed := false
			for j < len(p) {
				ch := p[j]
				if ch == '\\' && j+1 < len(p) {
					b.WriteByte(p[j+1])
					j += 2
					continue
				}
				if ch == '"' {
					closed = true
					j++
					break
				}
				b.WriteByte(ch)
				j++
			}
			if !closed {
				return c, errors.New("unterminated quoted value of " + name)
			}
			value, p = b.String(), p[j:]
		} else {
			j := 0
			for j < len(p) && isTChar(p[j]) {
				j++
			}
			if j == 0 {
				return c, errors.New("empty value of " + name)
			}
			value, p = p[:j], p[j:]
		}
		if seen[name] {
			return c, errors.New("repeated parameter " + name)
		}
		seen[name] = true
		switch name {
		case "realm":
			c.Realm = value
		case "resource_metadata":
			c.ResourceMetadata = value
		case "scope":
			c.Scope = value
		case "error":
			c.Error = value
		case "error_description":
			c.ErrorDescription = value
		}
		p = strings.TrimLeft(p, " \t")
		if p == "" {
			break
		}
		if p[0] != ',' {
			return c, errors.New("expected ',' after " + name)
		}
		p = p[1:]
	}
	return c, nil
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
