package auth

import (
	"strings"
)

// ScopeMap says which scopes each MCP operation needs. The outer key is the
// JSON-RPC method ("tools/call", "resources/read", "prompts/get", ...); the
// inner key is the tool or prompt name, or the resource URI. A resource key
// holding "{" is an RFC 6570 URI template ("epicme://entries/{id}") and
// matches the URIs it can expand to; the key "*" matches any name the method
// lists no better match for.
//
// Lookup order for a (method, name): the exact name, then the matching
// template with the longest literal prefix, then "*". A method that is not
// listed at all needs no scope beyond a valid token (initialize, ping, the
// list methods, notifications). For "completion/complete" and
// "resources/subscribe"/"resources/unsubscribe" that are not listed, the
// operation needs what the prompt or resource it refers to needs.
//
// It reads naturally as JSON:
//
//	{"tools/call": {"create_entry": ["entries:write"]},
//	 "resources/read": {"epicme://entries/{id}": ["entries:read"]}}
type ScopeMap map[string]map[string][]string

// Required returns the scopes needed to perform method on name (nil when none
// are).
func (m ScopeMap) Required(method, name string) []string {
	if names, ok := m[method]; ok {
		return lookupName(names, name)
	}
	switch method {
	case "completion/complete":
		// The reader puts "prompt:" or "resource:" before the name, so a
		// completion can be judged by the thing it completes.
		if n, ok := strings.CutPrefix(name, "prompt:"); ok {
			return m.Required("prompts/get", n)
		}
		if n, ok := strings.CutPrefix(name, "resource:"); ok {
			return m.Required("resources/read", n)
		}
	case "resources/subscribe", "resources/unsubscribe":
		return m.Required("resources/read", name)
	}
	return nil
}

func lookupName(names map[string][]string, name string) []string {
	if s, ok := names[name]; ok {
		return s
	}
	best, bestLen := []string(nil), -1
	for pattern, scopes := range names {
		if !strings.Contains(pattern, "{") {
			continue
		}
		if n := literalPrefixLen(pattern); n > bestLen && matchTemplate(pattern, name) {
			best, bestLen = scopes, n
		}
	}
	if bestLen >= 0 {
		return best
	}
	return names["*"]
}

func literalPrefixLen(pattern string) int {
	if i := strings.IndexByte(pattern, '{'); i >= 0 {
		return i
	}
	return len(pattern)
}

// matchTemplate reports whether uri is an expansion of the RFC 6570 template
// pattern. Simple expressions {x} match one or more characters that are not
// '/', '?' or '#' (§3.2.2 encodes reserved characters); reserved and fragment
// expressions {+x} {#x} match anything non-empty; query expressions {?x} {&x}
// match an optional query part to the end; path-style {/x} and label {.x}
// expressions match one segment with their prefix.
func matchTemplate(pattern, uri string) bool {
	for {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			return pattern == uri
		}
		if !strings.HasPrefix(uri, pattern[:i]) {
			return false
		}
		uri = uri[i:]
		j := strings.IndexByte(pattern[i:], '}')
		if j < 0 {
			return false
		}
		expr := pattern[i+1 : i+j]
		pattern = pattern[i+j+1:]
		op := byte(0)
		if expr != "" && strings.IndexByte("+#./;?&", expr[0]) >= 0 {
			op = expr[0]
		}
		switch op {
		case '?', '&':
			// Optional, and only meaningful at the end of a template.
			if uri == "" {
				continue
			}
			if uri[0] != op {
				return false
			}
			if pattern == "" {
				return true
			}
			k := strings.IndexByte(uri, '#')
			if k < 0 {
				k = len(uri)
			}
			uri = uri[k:]
			continue
		case '+', '#':
			if op == '#' {
				if uri == "" || uri[0] != '#' {
					return false
				}
				uri = uri[1:]
			}
			// Try every split point so that a literal after the expression
			// can still match.
			for k := len(uri); k >= 1; k-- {
				if matchTemplate(pattern, uri[k:]) {
					return true
				}
			}
			return false
		case '/', '.', ';':
			if uri == "" || uri[0] != op {
				return false
			}
			uri = uri[1:]
		}
		k := 0
		for k < len(uri) && uri[k] != '/' && uri[k] != '?' && uri[k] != '#' {
			k++
		}
		if k == 0 {
			return false
		}
		// A literal right after the expression may be a prefix of the rest
		// of the segment ("{id}.json"): try the shortest match that works.
		for n := 1; n <= k; n++ {
			if matchTemplate(pattern, uri[n:]) {
				return true
			}
		}
		return false
	}
}
