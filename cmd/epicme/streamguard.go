package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/epicme/epicme/auth"
)

// streamRecheck is how often the token of an open event stream is checked
// again.
const streamRecheck = time.Second

// guardStreams ends a GET event stream of /mcp (the server-to-client stream
// of protocol revisions before 2026-07-28) once its access token stops being
// valid: revoked, expired, or no longer verifiable. The auth middleware
// checks a token when a request starts; a stream can outlive that by hours,
// and must not keep delivering to a client whose access was taken away
// (fail closed: a verifier that cannot answer ends the stream too, and the
// client reconnects with whatever token it holds).
//
// It also caps the streams open at once per session and per user
// (maxStreamsPerSession, maxStreamsPerUser): past a cap a GET gets 429 and a
// JSON-RPC error saying which.
//
// It goes inside the auth middleware, which has already refused requests
// without a valid token. Other requests pass untouched: they end on their
// own within the write timeout.
func guardStreams(v auth.Verifier, every time.Duration, logger *slog.Logger) func(http.Handler) http.Handler {
	counts := &streamCounts{sessions: map[string]int{}, users: map[string]int{}}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet {
				next.ServeHTTP(w, r)
				return
			}
			token, err := auth.ParseAuthorization(r.Header.Values("Authorization"))
			if err != nil || token == "" {
				next.ServeHTTP(w, r)
				return
			}
			user := token
			if ti := auth.TokenInfoFromContext(r.Context()); ti != nil {
				user = ti.Issuer + "\x00" + ti.Subject
			}
			release, refusal := counts.acquire(r.Header.Get("Mcp-Session-Id"), user)
			if refusal != "" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": nil,
					"error": map[string]any{"code": -32600, "message": refusal}})
				return
			}
			defer release()
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			go func() {
				t := time.NewTicker(every)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
					if _, err := v.Verify(ctx, token); err != nil {
						if ctx.Err() != nil {
							return
						}
						reason := "the access token is no longer valid"
						if !errors.Is(err, auth.ErrInvalidToken) {
							reason = "the access token cannot be checked"
						}
						logger.InfoContext(ctx, "closing an event stream: "+reason)
						cancel()
						return
					}
				}
			}()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// Caps on open event streams, per instance. A client needs one GET stream
// per session (MCP basic/transports lets it hold more); each stream holds a
// connection, a goroutine and buffers for as long as the client likes, so
// without a cap one token could hold thousands. With routing by
// Mcp-Session-Id (docs/deployment.md) the session cap holds across
// instances; the user cap holds on each instance.
const (
	maxStreamsPerSession = 4
	maxStreamsPerUser    = 32
)

// streamCounts counts the open event streams of each session and user.
type streamCounts struct {
	mu       sync.Mutex
	sessions map[string]int
	users    map[string]int
}

// acquire takes a place for a stream, or returns why it cannot.
func (c *streamCounts) acquire(session, user string) (release func(), refusal string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessions[session] >= maxStreamsPerSession {
		return nil, fmt.Sprintf("this session already has %d open event streams, the most it may hold; close one before opening another", maxStreamsPerSession)
	}
	if c.users[user] >= maxStreamsPerUser {
		return nil, fmt.Sprintf("this user already has %d open event streams, the most one user may hold; close streams of sessions no longer in use", maxStreamsPerUser)
	}
	c.sessions[session]++
	c.users[user]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.sessions[session]--; c.sessions[session] == 0 {
			delete(c.sessions, session)
		}
		if c.users[user]--; c.users[user] == 0 {
			delete(c.users, user)
		}
	}, ""
}
