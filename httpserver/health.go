package httpserver

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// readyTimeout bounds a readiness check, so a stuck database makes /readyz
// answer 503 instead of hanging the prober.
const readyTimeout = 2 * time.Second

// handleHealth answers liveness probes: the process is up and serving HTTP.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// readyBody is the JSON answer of /readyz.
type readyBody struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// handleReady answers readiness probes: 200 when the database answers, 503
// otherwise. The reason names the failing dependency; the error itself goes
// to the log only.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			s.log.ErrorContext(r.Context(), "readiness check failed", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(readyBody{Status: "unavailable", Reason: "database is not answering"})
			return
		}
	}
	_ = json.NewEncoder(w).Encode(readyBody{Status: "ready"})
}
