package auth

import (
	"strings"
	"sync"

	"github.com/yosida95/uritemplate/v3"
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

// templates holds the compiled URI templates of every ScopeMap consulted;
// the keys are the maps' own patterns, so it grows no further than they do.
var templates sync.Map

// matchTemplate reports whether uri is an expansion of the RFC 6570 template
// pattern, with github.com/yosida95/uritemplate: the matcher mcp-go and the
// Go SDK dispatch resources/read with, so a URI is judged by the template
// its handler will be given. A pattern that does not compile matches
// nothing (a library would not have registered it either).
func matchTemplate(pattern, uri string) bool {
	t, ok := templates.Load(pattern)
	if !ok {
		compiled, err := uritemplate.New(pattern)
		if err != nil {
			return false
		}
		t, _ = templates.LoadOrStore(pattern, compiled)
	}
	return t.(*uritemplate.Template).Match(uri) != nil
}
