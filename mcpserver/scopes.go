package mcpserver

import (
	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
)

// DefaultScopes returns the scope table of the journal's surface: which
// scopes each tool call, resource read and prompt needs. It is the only
// table: the Server decides calls and filters lists with it, and the HTTP
// auth layer is handed Server.RequiredScopes to answer step-up challenges
// from the same rows. An operation the table does not list (initialize,
// ping, the list methods) needs only a caller; a tool, prompt or resource
// it does not list is refused (see need).
func DefaultScopes() auth.ScopeMap {
	return auth.ScopeMap{
		"tools/call": {
			"whoami":                {epicme.ScopeUserRead},
			"get_entry":             {epicme.ScopeEntriesRead},
			"list_entries":          {epicme.ScopeEntriesRead},
			"search_entries":        {epicme.ScopeEntriesRead},
			"create_entry":          {epicme.ScopeEntriesWrite},
			"update_entry":          {epicme.ScopeEntriesWrite},
			"delete_entry":          {epicme.ScopeEntriesWrite},
			"add_tag_to_entry":      {epicme.ScopeEntriesWrite},
			"remove_tag_from_entry": {epicme.ScopeEntriesWrite},
			"get_tag":               {epicme.ScopeTagsRead},
			"list_tags":             {epicme.ScopeTagsRead},
			"create_tag":            {epicme.ScopeTagsWrite},
			"update_tag":            {epicme.ScopeTagsWrite},
			"delete_tag":            {epicme.ScopeTagsWrite},
		},
		"resources/read": {
			uriCurrentUser:   {epicme.ScopeUserRead},
			uriTags:          {epicme.ScopeTagsRead},
			uriTagTemplate:   {epicme.ScopeTagsRead},
			uriEntryTemplate: {epicme.ScopeEntriesRead},
		},
		"prompts/get": {
			"suggest_tags": {epicme.ScopeEntriesRead, epicme.ScopeTagsRead},
		},
	}
}

// samplingScopes are what a token needs before create_entry asks the
// client's model for tags: the server will read and write entries and tags
// on the user's behalf.
var samplingScopes = []string{epicme.ScopeEntriesRead, epicme.ScopeEntriesWrite, epicme.ScopeTagsRead, epicme.ScopeTagsWrite}

// URIs of EpicMe's resources.
const (
	uriCurrentUser   = "epicme://users/current"
	uriTags          = "epicme://tags"
	uriTagPrefix     = "epicme://tags/"
	uriEntryPrefix   = "epicme://entries/"
	uriTagTemplate   = "epicme://tags/{id}"
	uriEntryTemplate = "epicme://entries/{id}"
	mimeJSON         = "application/json"
)

// RequiredScopes returns the scopes a JSON-RPC request needs: name is the
// tool name for tools/call, the prompt name for prompts/get and the URI for
// resources/read (see auth.ScopeMap.Required for the lookup). Other methods
// (lists, completion, discovery) need no scope of their own: what they show
// is filtered by the caller's scopes. Hand it to auth.Options so that the
// HTTP layer answers a step-up challenge (RFC 6750 §3.1, insufficient_scope)
// from the same table the Server decides with.
func (s *Server) RequiredScopes(method, name string) []string {
	return s.scopes.Required(method, name)
}

// need returns the scopes a tool call, prompt or resource needs, and false
// for one the table does not list: the adapter refuses what it cannot judge
// (fail closed), whatever a handler might do with it.
func (s *Server) need(method, name string) ([]string, bool) {
	scopes := s.scopes.Required(method, name)
	return scopes, len(scopes) > 0
}

// allows reports whether c may perform method on name.
func (s *Server) allows(c *epicme.Caller, method, name string) bool {
	need, ok := s.need(method, name)
	return ok && c.Scopes.Has(need...)
}
