package mcpserver

import (
	"strings"

	"github.com/epicme/epicme"
)

// toolScopes says which scopes each tool needs (the scope table of the
// journal's surface). A tool missing from the table is refused.
var toolScopes = map[string][]string{
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
}

// promptScopes says which scopes each prompt needs.
var promptScopes = map[string][]string{
	"suggest_tags": {epicme.ScopeEntriesRead, epicme.ScopeTagsRead},
}

// samplingScopes are what a token needs before create_entry asks the
// client's model for tags: the server will read and write entries and tags
// on the user's behalf.
var samplingScopes = []string{epicme.ScopeEntriesRead, epicme.ScopeEntriesWrite, epicme.ScopeTagsRead, epicme.ScopeTagsWrite}

// URIs of EpicMe's resources.
const (
	uriCurrentUser     = "epicme://users/current"
	uriTags            = "epicme://tags"
	uriTagPrefix       = "epicme://tags/"
	uriEntryPrefix     = "epicme://entries/"
	uriTagTemplate     = "epicme://tags/{id}"
	uriEntryTemplate   = "epicme://entries/{id}"
	mimeJSON           = "application/json"
	entryTemplateScope = epicme.ScopeEntriesRead
	tagTemplateScope   = epicme.ScopeTagsRead
)

// resourceScopes returns the scopes a resource URI (or URI template) needs,
// and false for a URI that is none of EpicMe's.
func resourceScopes(uri string) ([]string, bool) {
	switch {
	case uri == uriCurrentUser:
		return []string{epicme.ScopeUserRead}, true
	case uri == uriTags, strings.HasPrefix(uri, uriTagPrefix):
		return []string{epicme.ScopeTagsRead}, true
	case strings.HasPrefix(uri, uriEntryPrefix):
		return []string{epicme.ScopeEntriesRead}, true
	}
	return nil, false
}

// RequiredScopes returns the scopes a JSON-RPC request needs: name is the
// tool name for tools/call, the prompt name for prompts/get and the URI for
// resources/read. Other methods (lists, completion, discovery) need no scope
// of their own: what they show is filtered by the caller's scopes. The HTTP
// auth layer uses it to answer a step-up challenge (RFC 6750 §3.1,
// insufficient_scope) before the request reaches the adapter.
func RequiredScopes(method, name string) []string {
	switch method {
	case "tools/call":
		if s, ok := toolScopes[name]; ok {
			return s
		}
	case "prompts/get":
		if s, ok := promptScopes[name]; ok {
			return s
		}
	case "resources/read", "resources/subscribe":
		if s, ok := resourceScopes(name); ok {
			return s
		}
	}
	return nil
}
