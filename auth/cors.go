package auth

import (
	"net/http"
	"net/url"
	"strings"
)

// Headers an MCP client sends and reads (MCP Streamable HTTP transport).
var (
	corsAllowHeaders = []string{
		"Authorization", "Content-Type", "Accept", "Mcp-Session-Id", "Mcp-Protocol-Version",
		"Mcp-Method", "Mcp-Name", "Last-Event-ID", "DPoP",
	}
	corsExposeHeaders = "WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version, DPoP-Nonce"
)

// originMatcher decides which browser origins may call the MCP endpoint.
// Patterns are origins ("https://app.example.com"), an origin whose port is
// "*" ("http://localhost:*": any port, or none), or "*" (any origin).
type originMatcher struct {
	any     bool
	exact   map[string]bool
	anyPort map[string]bool // "scheme://host"
}

func newOriginMatcher(patterns []string) originMatcher {
	m := originMatcher{exact: map[string]bool{}, anyPort: map[string]bool{}}
	for _, p := range patterns {
		p = strings.TrimSuffix(strings.TrimSpace(p), "/")
		switch {
		case p == "":
		case p == "*":
			m.any = true
		case strings.HasSuffix(p, ":*"):
			m.anyPort[strings.ToLower(strings.TrimSuffix(p, ":*"))] = true
		default:
			m.exact[strings.ToLower(p)] = true
		}
	}
	return m
}

// allows reports whether origin (an Origin header value, RFC 6454 §7) may
// call.
func (m originMatcher) allows(origin string) bool {
	if m.any {
		return true
	}
	o := strings.ToLower(origin)
	if m.exact[o] {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return false
	}
	return m.anyPort[u.Scheme+"://"+u.Hostname()] || m.anyPort[u.Scheme+"://["+u.Hostname()+"]"]
}

// defaultOrigins are the origins allowed when Options.AllowedOrigins is
// empty: the server's own, and loopback on any port so that local tools
// such as the MCP Inspector work against a local server.
func defaultOrigins(resourceURL *url.URL) []string {
	return []string{
		resourceURL.Scheme + "://" + resourceURL.Host,
		"http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*",
	}
}

// setCORS adds the response headers that let a browser on an allowed origin
// read the answer (Fetch standard, CORS protocol).
func setCORS(h http.Header, origin string) {
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
}

// writePreflight answers a CORS preflight for the MCP endpoint.
func writePreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
	allowed := strings.Join(corsAllowHeaders, ", ")
	// Tool parameters may travel in Mcp-Param-* headers (2026-07-28); their
	// names depend on the tool, so allow whichever of them is asked for.
	for _, f := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
		if f = strings.TrimSpace(f); len(f) > len("mcp-param-") && strings.EqualFold(f[:len("mcp-param-")], "mcp-param-") && isToken(f) {
			allowed += ", " + f
		}
	}
	h.Set("Access-Control-Allow-Headers", allowed)
	h.Set("Access-Control-Max-Age", "600")
	h.Set("Allow", "GET, POST, DELETE, OPTIONS")
	w.WriteHeader(http.StatusNoContent)
}
