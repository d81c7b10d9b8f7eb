package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
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
// It goes inside the auth middleware, which has already refused requests
// without a valid token. Other requests pass untouched: they end on their
// own within the write timeout.
func guardStreams(v auth.Verifier, every time.Duration, logger *slog.Logger) func(http.Handler) http.Handler {
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
