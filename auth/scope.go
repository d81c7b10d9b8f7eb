package auth

import (
	"fmt"
	"regexp"
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

// CheckTemplates reports the first name of a resource method (resources/read,
// resources/subscribe, resources/unsubscribe) that holds "{" but is not an
// RFC 6570 template: such a row would match nothing, and the URIs it was
// meant for would fall to "*" or to no scope at all.
func (m ScopeMap) CheckTemplates() error {
	for method, names := range m {
		if !strings.HasPrefix(method, "resources/") {
			continue
		}
		for pattern := range names {
			if strings.Contains(pattern, "{") {
				if _, err := compileTemplate(pattern); err != nil {
					return fmt.Errorf("%s %q is not a URI template (RFC 6570): %v", method, pattern, err)
				}
			}
		}
	}
	return nil
}

// templates holds the compiled URI templates of every ScopeMap consulted
// (compiledTemplate); the keys are the maps' own
// patterns, never a request's, so it grows no further than they do.
var templates sync.Map

// matchTemplate reports whether uri is an expansion of the RFC 6570 template
// pattern, by the template's regular expression as the Go SDK matches it
// (mcp-go requires that match too, and more), so a URI is judged by the
// template its handler could be given. The regular expression runs in time
// linear in the URI (Go's regexp), which matters: the middleware decides
// the scopes of a request before its token, to name them in the 401. A
// pattern that does not compile matches nothing (CheckTemplates finds it).
func matchTemplate(pattern, uri string) bool {
	re, _ := compileTemplate(pattern)
	return re != nil && re.MatchString(uri)
}

// compileTemplate returns the regular expression of the template pattern,
// compiled once (by CheckTemplates at start-up, or by the first request);
// nil and the parse error for a pattern that is not a template.
func compileTemplate(pattern string) (*regexp.Regexp, error) {
	t, ok := templates.Load(pattern)
	if !ok {
		var c compiledTemplate
		var parsed *uritemplate.Template
		if parsed, c.err = uritemplate.New(pattern); c.err == nil {
			c.re = parsed.Regexp()
		}
		t, _ = templates.LoadOrStore(pattern, c)
	}
	c := t.(compiledTemplate)
	return c.re, c.err
}

// compiledTemplate is a template's regular expression, or why it has none.
type compiledTemplate struct {
	re  *regexp.Regexp
	err error
}
