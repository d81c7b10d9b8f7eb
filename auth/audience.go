package auth

import (
	"net/url"
	"strings"
)

// NormalizeResource returns the form in which resource identifiers are
// compared (RFC 8707 §2, RFC 9728 §3.3): scheme and host lower-cased, one
// trailing slash removed. Everything else (port spelling, path case, query)
// is kept, because the resource must be exactly the URL clients use.
func NormalizeResource(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return strings.TrimSuffix(s, "/")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	out := u.String()
	return strings.TrimSuffix(out, "/")
}

// SameResource reports whether a and b name the same protected resource
// under [NormalizeResource].
func SameResource(a, b string) bool {
	if a == b {
		return true
	}
	return NormalizeResource(a) == NormalizeResource(b)
}

// audienceContains reports whether aud names resource.
func audienceContains(aud []string, resource string) bool {
	for _, a := range aud {
		if SameResource(a, resource) {
			return true
		}
	}
	return false
}
