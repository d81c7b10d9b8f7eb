package mcpserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/mcp"
)

// Peers connects the instances that serve one endpoint and share one store,
// so that what needs the instance holding a stream reaches it whichever
// instance a request arrived at (sessions of protocol revisions before
// 2026-07-28):
//
//   - a session ended (DELETE) on one instance is dropped from the caches
//     and streams of the others;
//   - a client's JSON-RPC response to an elicitation or sampling request
//     (MCP client/elicitation, client/sampling) that arrives at an instance
//     not waiting for it goes to the one that is, which confirms that it
//     delivered it; the client gets 202 only then;
//   - a tag suggestion (sampling) for a session whose GET stream another
//     instance holds is asked on that stream;
//   - notifications/resources/updated reach the instance that holds the
//     subscribed session.
//
// Messages are short JSON texts (at most MaxPeerMessage bytes). Delivery is
// at most once: a message published while an instance does not listen is
// lost to it; the instance then serves sessions from the store only (see
// PeersLost).
type Peers interface {
	// Publish sends msg to every instance, this one included.
	Publish(ctx context.Context, msg string) error
}

// MaxPeerMessage is the longest message given to Peers.Publish; it fits a
// PostgreSQL notification payload (8000 bytes). A client's response larger
// than that cannot be forwarded, and is refused with 413.
const MaxPeerMessage = 7900

// Kinds of peer messages.
const (
	kindEnd      = "end"     // a session was ended
	kindResponse = "resp"    // a client's response to a server request
	kindUpdated  = "upd"     // resources of a user changed
	kindSuggest  = "suggest" // ask for tag suggestions on a session's stream
	kindAck      = "ack"     // a relayed response was handed to mcp-go, with its status
)

// peerMessage is one message between instances. Sessions are named by
// their key (SHA-256 of the id), never by their id.
type peerMessage struct {
	Kind    string          `json:"k"`
	From    string          `json:"o"`
	Key     string          `json:"s,omitempty"`
	UserID  string          `json:"u,omitempty"`
	URIs    []string        `json:"r,omitempty"`
	EntryID int64           `json:"e,omitempty"`
	Version string          `json:"v,omitempty"`
	Body    json.RawMessage `json:"b,omitempty"`
	// Ack names a relayed response (kindResponse) and its confirmation
	// (kindAck), which carries the HTTP status mcp-go gave it.
	Ack    string `json:"a,omitempty"`
	Status int    `json:"st,omitempty"`
}

func newInstanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// encodePeerMessage returns the text of m from this instance, or false when
// it is longer than MaxPeerMessage.
func (s *Server) encodePeerMessage(m peerMessage) (string, bool) {
	m.From = s.instance
	b, err := json.Marshal(m)
	if err != nil || len(b) > MaxPeerMessage {
		return "", false
	}
	return string(b), true
}

// publish sends m to the other instances, if there are Peers.
func (s *Server) publish(ctx context.Context, m peerMessage) error {
	if s.opts.Peers == nil {
		return nil
	}
	msg, ok := s.encodePeerMessage(m)
	if !ok {
		return epicme.Errorf(epicme.EINVALID, "message too large to pass to the other instances")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.opts.Peers.Publish(ctx, msg); err != nil {
		s.logger.WarnContext(ctx, "could not reach the other instances", "kind", m.Kind, "err", err)
		return err
	}
	return nil
}

// ReceivePeerMessage handles a message that an instance (this one
// included) published through Peers. Call it with each message, in order,
// from one goroutine; it returns quickly.
func (s *Server) ReceivePeerMessage(msg string) {
	var m peerMessage
	if err := json.Unmarshal([]byte(msg), &m); err != nil || m.From == s.instance {
		return
	}
	switch m.Kind {
	case kindEnd:
		s.sessions.endLocal(m.Key)
	case kindResponse:
		id, _, active, _ := s.sessions.localState(m.Key)
		if !active {
			return
		}
		status := s.replay(http.MethodPost, id, m.Version, m.Body)
		if status != http.StatusAccepted {
			s.logger.Debug("forwarded client response not delivered here", "status", status)
		}
		if m.Ack != "" {
			// Publishing waits on the database: not on this goroutine.
			go s.publish(context.Background(), peerMessage{Kind: kindAck, Ack: m.Ack, Status: status})
		}
	case kindAck:
		if ch, ok := s.acks.Load(m.Ack); ok {
			select {
			case ch.(chan int) <- m.Status:
			default: // more answers than anyone waits for
			}
		}
	case kindUpdated:
		go s.deliverUpdates(m.UserID, m.URIs)
	case kindSuggest:
		go s.suggestPassedOn(m.Key, m.UserID, m.EntryID)
	}
}

// PeersReady says that from now on every message published is received
// (after a start, or a reconnection): sessions may be served from memory.
func (s *Server) PeersReady() { s.sessions.setLive(true) }

// PeersLost says that messages may be missed until the next PeersReady:
// meanwhile every request reads its session from the store, so that a
// session ended elsewhere is refused at once.
func (s *Server) PeersLost() { s.sessions.setLive(false) }

// replay hands a request to mcp-go on behalf of another instance (a
// forwarded response) or to clean up a session ended elsewhere (DELETE),
// and returns mcp-go's status. Terminate does nothing for it.
func (s *Server) replay(method, sessionID, version string, body []byte) int {
	ctx := context.WithValue(context.Background(), replayCtxKey{}, true)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, method, "http://localhost/mcp", bytes.NewReader(body))
	if err != nil {
		return http.StatusInternalServerError
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(headerSessionID, sessionID)
	if version != "" {
		r.Header.Set(mcp.HeaderProtocolVersion, version)
	}
	rec := &recorder{header: http.Header{}}
	s.http.ServeHTTP(rec, r)
	return rec.status()
}

// recorder is the response writer of a request answered inside the server.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// routeResponse serves a client's response to a server request (MCP
// basic/transports: the client POSTs it, and any instance may receive it).
// The instance waiting for it is this one if mcp-go here accepts it (202);
// otherwise the response goes to the other instances, and the one waiting
// delivers it and confirms (kindAck). The client gets 202 only once the
// delivery is confirmed; an instance that holds the session but no such
// request answers as one here would (a stray response); no confirmation
// within RelayTimeout (the instance holding the request stopped, say) is
// 503, and the request it answered is lost.
func (s *Server) routeResponse(w http.ResponseWriter, r *http.Request, sess *epicme.MCPSession, body []byte) {
	key := epicme.SessionKey(sess.ID)
	status := http.StatusNotFound
	if _, _, active, _ := s.sessions.localState(key); active {
		rec := &recorder{header: http.Header{}}
		s.http.ServeHTTP(rec, r)
		if status = rec.status(); status == http.StatusAccepted {
			w.WriteHeader(http.StatusAccepted)
			return
		}
	}
	if s.opts.Peers == nil {
		s.strayResponse(w, r, status)
		return
	}
	ack := newInstanceID()
	msg, ok := s.encodePeerMessage(peerMessage{Kind: kindResponse, Key: key, Version: r.Header.Get(mcp.HeaderProtocolVersion), Body: body, Ack: ack})
	if !ok {
		writeRPCError(w, http.StatusRequestEntityTooLarge, codeInvalidRequest,
			"the response is too large to pass to the server instance waiting for it")
		return
	}
	// Every instance with requests of the session in flight tries the
	// response and says how it went; one of them holds its request.
	done := make(chan int, 16)
	s.acks.Store(ack, done)
	defer s.acks.Delete(ack)
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RelayTimeout)
	defer cancel()
	if err := s.opts.Peers.Publish(ctx, msg); err != nil {
		s.logger.WarnContext(ctx, "could not forward a client response", "err", err)
		w.Header().Set("Retry-After", retryAfter)
		writeRPCError(w, http.StatusServiceUnavailable, codeUnavailable, "the server cannot pass the response on for now; try again")
		return
	}
	refused := 0
	for {
		select {
		case status := <-done:
			if status == http.StatusAccepted {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			refused = status
		case <-ctx.Done():
			if refused != 0 {
				// Instances holding the session tried it, and none had
				// its request.
				s.strayResponse(w, r, refused)
				return
			}
			s.logger.WarnContext(r.Context(), "no instance confirmed a relayed client response", "timeout", s.opts.RelayTimeout)
			writeRPCError(w, http.StatusServiceUnavailable, codeUnavailable,
				"no server instance confirmed it received this response: the one holding the request it answers may have stopped, and that request is lost")
			return
		}
	}
}

// StrayResponses is the number of client responses that answered no
// request pending on this instance (and, with Peers, were not passed on):
// answered already, timed out, or never asked.
func (s *Server) StrayResponses() uint64 { return s.stray.Load() }

// strayResponse answers a client's response that no request here waits
// for. It is the client's mistake, which any user can make at will, so it
// is counted and logged at debug, not as an error.
func (s *Server) strayResponse(w http.ResponseWriter, r *http.Request, status int) {
	s.stray.Add(1)
	s.logger.DebugContext(r.Context(), "stray client response: no request of the server waits for it", "status", status)
	writeRPCError(w, http.StatusBadRequest, codeInvalidRequest,
		"this response answers no pending request of the server (answered already, timed out, or never asked)")
}

// libraryLogger is the logger given to mcp-go. mcp-go logs a client's
// response that matches no pending request as an error
// ("Failed to handle sampling response"); EpicMe answers and counts those
// itself (strayResponse), so that line is lowered to debug.
func libraryLogger(l *slog.Logger) *slog.Logger {
	return slog.New(demoteStray{l.Handler()})
}

// mcpgoStrayMessage is mcp-go's log message for an undeliverable client
// response (server/streamable_http.go, handlePost).
const mcpgoStrayMessage = "Failed to handle sampling response"

type demoteStray struct{ slog.Handler }

func (h demoteStray) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == mcpgoStrayMessage && r.Level > slog.LevelDebug {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r = slog.NewRecord(r.Time, slog.LevelDebug, "client response not delivered by mcp-go", r.PC)
	}
	return h.Handler.Handle(ctx, r)
}

func (h demoteStray) WithAttrs(as []slog.Attr) slog.Handler {
	return demoteStray{h.Handler.WithAttrs(as)}
}

func (h demoteStray) WithGroup(name string) slog.Handler {
	return demoteStray{h.Handler.WithGroup(name)}
}
