package ratelimit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// JSONRPCLimited is the JSON-RPC error code of a request refused for its
// rate: in the range JSON-RPC 2.0 §5.1 reserves for implementation-defined
// server errors, as MCP defines none for rate limits.
const JSONRPCLimited = -32029

// WriteJSONRPC answers 429 with Retry-After and a JSON-RPC error response
// whose id is null (the request was not read). what names the allowance
// ("this client", "this user", "this address").
func WriteJSONRPC(w http.ResponseWriter, what string, l Limit, retry time.Duration) {
	msg := fmt.Sprintf("rate limit exceeded: %s may make %d requests a minute; retry after %d seconds", what, l.PerMinute, Seconds(retry))
	body, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"id":      nil,
		"error":   map[string]any{"code": JSONRPCLimited, "message": msg, "data": map[string]any{"retryAfter": Seconds(retry)}},
	})
	write(w, "application/json", body, retry)
}

// WriteOAuth answers 429 with Retry-After and an OAuth error object
// (RFC 6749 §5.2 shape). RFC 6749 has no code for rate limits; like the
// registration endpoint's limit, it says temporarily_unavailable.
func WriteOAuth(w http.ResponseWriter, what string, l Limit, retry time.Duration) {
	body, _ := json.Marshal(map[string]string{
		"error":             "temporarily_unavailable",
		"error_description": fmt.Sprintf("too many requests: %s may make %d a minute; retry after %d seconds", what, l.PerMinute, Seconds(retry)),
	})
	w.Header().Set("Cache-Control", "no-store")
	write(w, "application/json", body, retry)
}

// WritePage answers 429 with Retry-After and a short plain-text page, for
// routes a browser shows (the authorization endpoint).
func WritePage(w http.ResponseWriter, what string, l Limit, retry time.Duration) {
	body := fmt.Sprintf("Too many requests: %s may load this page %d times a minute. Try again in %d seconds.\n", what, l.PerMinute, Seconds(retry))
	w.Header().Set("Cache-Control", "no-store")
	write(w, "text/plain; charset=utf-8", []byte(body), retry)
}

func write(w http.ResponseWriter, ct string, body []byte, retry time.Duration) {
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Retry-After", strconv.Itoa(Seconds(retry)))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusTooManyRequests)
	w.Write(body)
}
