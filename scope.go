package epicme

import (
	"slices"
	"strings"
)

// Scopes that gate EpicMe's operations. An OAuth access token carries some of
// them; a client whose token lacks a scope neither sees nor calls what it
// gates.
const (
	ScopeUserRead     = "user:read"
	ScopeEntriesRead  = "entries:read"
	ScopeEntriesWrite = "entries:write"
	ScopeTagsRead     = "tags:read"
	ScopeTagsWrite    = "tags:write"
)

// AllScopes lists every scope EpicMe defines, in the order they are advertised.
var AllScopes = []string{ScopeUserRead, ScopeEntriesRead, ScopeEntriesWrite, ScopeTagsRead, ScopeTagsWrite}

// ScopeDescriptions says in plain words what each scope lets a client do.
var ScopeDescriptions = map[string]string{
	ScopeUserRead:     "See your account's name and email",
	ScopeEntriesRead:  "Read your journal entries",
	ScopeEntriesWrite: "Create, change and delete your journal entries",
	ScopeTagsRead:     "See your tags",
	ScopeTagsWrite:    "Create, change and delete your tags",
}

// Scopes is a set of granted scopes.
type Scopes []string

// ParseScopes splits a space-separated scope string (RFC 6749 §3.3).
func ParseScopes(s string) Scopes { return Scopes(strings.Fields(s)) }

// Has reports whether every one of want is granted.
func (s Scopes) Has(want ...string) bool {
	for _, w := range want {
		if !slices.Contains(s, w) {
			return false
		}
	}
	return true
}

// Missing returns those of want that are not granted.
func (s Scopes) Missing(want ...string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(s, w) {
			out = append(out, w)
		}
	}
	return out
}

// String joins the scopes with spaces.
func (s Scopes) String() string { return strings.Join(s, " ") }
