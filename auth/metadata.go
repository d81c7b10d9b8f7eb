package auth

import (
	"net/http"
	"strings"
)

// ProtectedResourceMetadata is the document of RFC 9728 §2 that tells
// clients which authorization servers issue tokens for this resource.
type ProtectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
	// DPoPSigningAlgValuesSupported lists the DPoP proof algorithms
	// accepted (RFC 9728 §2).
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	// DPoPBoundAccessTokensRequired says bearer tokens are refused
	// (RFC 9728 §2, RFC 9449 §7).
	DPoPBoundAccessTokensRequired bool `json:"dpop_bound_access_tokens_required,omitempty"`
}

// MetadataPaths are the paths where the metadata is served: the RFC 9728
// §3.1 path-suffixed form (/.well-known/oauth-protected-resource/mcp) and
// the root form, which some clients probe.
func (rs *ResourceServer) MetadataPaths() []string {
	root := "/.well-known/oauth-protected-resource"
	if rs.mcpPath == "/" {
		return []string{root}
	}
	return []string{root + rs.mcpPath, root}
}

// MetadataHandler serves the protected resource metadata. It is public and
// readable from any origin (Access-Control-Allow-Origin: *), answers CORS
// preflights with 204, and needs no token.
func (rs *ResourceServer) MetadataHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodOptions:
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				var ok []string
				for _, f := range strings.Split(req, ",") {
					if f = strings.TrimSpace(f); isToken(f) {
						ok = append(ok, f)
					}
				}
				h.Set("Access-Control-Allow-Headers", strings.Join(ok, ", "))
			}
			h.Set("Access-Control-Max-Age", "86400")
			h.Set("Allow", "GET, HEAD, OPTIONS")
			w.WriteHeader(http.StatusNoContent)
		case http.MethodGet, http.MethodHead:
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "public, max-age=300")
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				_, _ = w.Write(rs.metadata)
			}
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			writeErrorBody(w, http.StatusMethodNotAllowed, "invalid_request", "Use GET.")
		}
	})
}
