package httpserver

import (
	"html/template"
	"net/http"
	"strings"
)

// HomePage is the small page a person sees who opens the server's URL in a
// browser: what this is, the MCP URL to paste into a client, and links (to
// sign in, to the account page). The MCP endpoint shows the same page to a
// browser that opens it, under the 401 it answers every request without a
// token.
type HomePage struct {
	// MCPURL is the URL of the MCP endpoint, as clients must use it.
	MCPURL string
	// Links are shown under the URL, in order.
	Links []Link
}

// Link is one link of the home page.
type Link struct {
	Text, URL string
}

var homeTemplate = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>EpicMe</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5">
<h1>EpicMe</h1>
{{if .AtMCP}}<p>This is the MCP endpoint of EpicMe: it answers MCP clients, not browsers, and asks every request for an access token.</p>
{{else}}<p>EpicMe is a private journal served over the Model Context Protocol: your AI assistant reads and writes it once you connect it and sign in.</p>
{{end}}<p>To connect a client (Claude Code, the MCP Inspector, VS Code), give it this URL:</p>
<p><code style="font-size: 1.1em; padding: .3em .5em; background: #f2f2f2">{{.MCPURL}}</code></p>
<p>The client opens a sign-in page here when it first connects.</p>
{{if .Links}}<ul>{{range .Links}}<li><a href="{{.URL}}">{{.Text}}</a></li>{{end}}</ul>{{end}}
</body>
</html>
`))

type homeData struct {
	HomePage
	AtMCP bool
}

func (p *HomePage) render(w http.ResponseWriter, status int, atMCP bool) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	_ = homeTemplate.Execute(w, homeData{HomePage: *p, AtMCP: atMCP})
}

// ServeHTTP serves the page.
func (p *HomePage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.render(w, http.StatusOK, false)
}

// serveFavicon answers browsers' automatic favicon request quietly, without
// a 404 in the access log or the console.
func serveFavicon(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "max-age=86400")
	w.WriteHeader(http.StatusNoContent)
}

// browserHint shows the home page to a browser that opens the MCP endpoint
// and is refused: the status and the WWW-Authenticate challenge stay those
// of the authentication middleware (RFC 9728 §5.1), only the body changes.
// A request is a browser's when it is a GET that accepts text/html and
// carries no Authorization header; MCP clients never accept text/html, so
// they see exactly what the middleware answers.
func (p *HomePage) browserHint(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.Header.Get("Authorization") != "" || !strings.Contains(r.Header.Get("Accept"), "text/html") {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&hintWriter{ResponseWriter: w, page: p}, r)
	})
}

// hintWriter replaces the body of a 401 with the home page.
type hintWriter struct {
	http.ResponseWriter
	page     *HomePage
	wrote    bool
	replaced bool
}

func (h *hintWriter) WriteHeader(code int) {
	if h.wrote {
		return
	}
	h.wrote = true
	if code == http.StatusUnauthorized {
		h.replaced = true
		h.page.render(h.ResponseWriter, code, true)
		return
	}
	h.ResponseWriter.WriteHeader(code)
}

func (h *hintWriter) Write(b []byte) (int, error) {
	if !h.wrote {
		h.WriteHeader(http.StatusOK)
	}
	if h.replaced {
		return len(b), nil
	}
	return h.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (h *hintWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Flush passes through, for handlers that stream.
func (h *hintWriter) Flush() {
	if f, ok := h.ResponseWriter.(http.Flusher); ok && !h.replaced {
		f.Flush()
	}
}
