package auth

import (
	"errors"
	"strings"
)

// Errors of [ParseAuthorization].
var (
	// ErrNoCredentials: no Authorization header, or one with another scheme
	// than Bearer. RFC 6750 §3.1 says such a request gets a challenge
	// without an error code.
	ErrNoCredentials = errors.New("no bearer credentials")
	// ErrMalformedAuthorization: the header is present but is not one
	// well-formed "Bearer <token68>" (RFC 6750 §2.1), or it is repeated.
	ErrMalformedAuthorization = errors.New("malformed Authorization header")
)

// ParseAuthorization extracts the bearer token from the values of a request's
// Authorization header fields (RFC 6750 §2.1: credentials = "Bearer" 1*SP
// b64token; the scheme is case-insensitive, RFC 9110 §11.1).
//
// It returns [ErrNoCredentials] when there is no header or the scheme is not
// Bearer, and an error wrapping [ErrMalformedAuthorization] when there are
// several headers or the one header is not well formed.
func ParseAuthorization(values []string) (string, error) {
	scheme, token, err := parseCredentials(values)
	if err == nil && scheme != "Bearer" {
		return "", ErrNoCredentials
	}
	return token, err
}

// parseCredentials is [ParseAuthorization] for the Bearer and DPoP schemes
// (RFC 9449 §7.1: the same token68 syntax), returning the scheme as
// "Bearer" or "DPoP".
func parseCredentials(values []string) (scheme, token string, err error) {
	switch len(values) {
	case 0:
		return "", "", ErrNoCredentials
	case 1:
	default:
		return "", "", malformed("more than one Authorization header")
	}
	v := strings.Trim(values[0], " \t")
	if v == "" {
		return "", "", malformed("empty Authorization header")
	}
	if strings.ContainsRune(v, ',') {
		// Several credentials in one field are not a thing (RFC 9110 §11.6.2
		// allows one), and a comma never appears in a b64token.
		return "", "", malformed("more than one credential in the Authorization header")
	}
	scheme, rest, _ := strings.Cut(v, " ")
	if !isToken(scheme) {
		return "", "", malformed("the authentication scheme is not a token")
	}
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		scheme = "Bearer"
	case strings.EqualFold(scheme, "DPoP"):
		scheme = "DPoP"
	default:
		return "", "", ErrNoCredentials
	}
	token = strings.TrimLeft(rest, " ")
	if token == "" {
		return "", "", malformed("the " + scheme + " credentials carry no token")
	}
	if !isB64Token(token) {
		return "", "", malformed("the bearer token has characters outside b64token (RFC 6750 §2.1)")
	}
	return scheme, token, nil
}

func malformed(reason string) error {
	return &authHeaderError{reason: reason}
}

type authHeaderError struct{ reason string }

func (e *authHeaderError) Error() string        { return e.reason }
func (e *authHeaderError) Is(target error) bool { return target == ErrMalformedAuthorization }

// isB64Token reports whether s matches RFC 6750 §2.1's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			i++
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTChar(s[i]) {
			return false
		}
	}
	return true
}

func isTChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
