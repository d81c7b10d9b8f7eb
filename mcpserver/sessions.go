package mcpserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/internal/lru"
)

// Sessions of protocol revisions 2025-03-26..2025-11-25 (MCP
// basic/transports, "Session Management") live in an epicme.SessionStore,
// so that every instance sharing the store serves every session, and a
// session outlives a restart.
//
// mcp-go (v1.6.0) keeps its own session objects in memory. For a request
// whose session id its SessionIdManager.Validate accepts but that it has no
// session object for (a session another instance, or this one before a
// restart, began), it builds an ephemeral session for the one request: it
// reports itself initialized, serves every method (tools/call,
// resources/read, resources/subscribe, prompts/get, completion/complete,
// logging/setLevel), sends server requests made while the request runs on
// the request's own SSE stream, and is dropped afterwards. It does not know
// the client's capabilities, which this adapter therefore takes from the
// stored session (see clientCaps). A GET stream with such an id registers a
// session object of its own for as long as it lasts.

// sessionRegistry is mcp-go's SessionIdManagerResolver over the session
// store, with what this instance holds of each session: the mcp-go session
// object registered here, requests in flight, GET streams.
type sessionRegistry struct {
	s     *Server
	store epicme.SessionStore

	mu sync.Mutex
	// cache holds sessions read from the store, by key, for cacheTTL; only
	// with Peers, whose "end" notices drop a session from every cache.
	cache *lru.Cache[string, cachedSession]
	// live is false while Peers notices may be missed: then nothing is
	// taken from the cache.
	live  bool
	local map[string]*localSession
}

// sessionCacheTTL bounds how long an instance serves a session from memory
// without asking the store. A session ended on another instance is refused
// here as soon as its "end" notice arrives (with Peers), and at the latest
// after this.
const sessionCacheTTL = time.Second

// maxCachedSessions bounds the cache; past it the least recently used
// session goes (and is read from the store again when it comes back).
const maxCachedSessions = 10000

// cachedSession is a session read from the store and when its cache entry
// expires.
type cachedSession struct {
	sess    *epicme.MCPSession
	expires time.Time
}

// localSession is what this instance holds of one session.
type localSession struct {
	id     string
	userID string
	// registered is mcp-go's session object, when one is registered here
	// (the session began here, or a GET stream is open here).
	registered server.ClientSession
	// requests counts requests in flight; streams holds the GET streams.
	requests int
	streams  map[*int]context.CancelFunc
}

func newSessionRegistry(s *Server, store epicme.SessionStore) *sessionRegistry {
	return &sessionRegistry{s: s, store: store, cache: lru.New[string, cachedSession](maxCachedSessions), local: map[string]*localSession{}}
}

// cacheTTL is how long a session read from the store is used. Without
// Peers this instance hears of no other, so a session another process
// ends is refused at the latest after sessionCacheTTL; with Peers, nothing
// is cached while notices may be missed.
func (reg *sessionRegistry) cacheTTL() time.Duration {
	if reg.s.opts.Peers != nil && !reg.live {
		return 0
	}
	return sessionCacheTTL
}

// touchEvery is how stale a session's LastSeen may grow before a request
// writes it: the store is not written on every request.
func (reg *sessionRegistry) touchEvery() time.Duration {
	return min(reg.s.opts.SessionIdleTTL/10, time.Minute)
}

// lookup returns the live session with id, nil when there is none (unknown,
// ended or idle), or the store's error.
func (reg *sessionRegistry) lookup(ctx context.Context, id string) (*epicme.MCPSession, error) {
	key := epicme.SessionKey(id)
	now := time.Now()
	idleSince := now.Add(-reg.s.opts.SessionIdleTTL)
	reg.mu.Lock()
	ttl := reg.cacheTTL()
	reg.mu.Unlock()
	var c cachedSession
	ok := false
	if ttl > 0 {
		c, ok = reg.cache.Get(key, now)
	}
	var sess *epicme.MCPSession
	if ok && !c.sess.LastSeen.Before(idleSince) {
		sess = c.sess
	} else {
		got, err := reg.store.GetSession(ctx, id, idleSince)
		if epicme.ErrorCode(err) == epicme.ENOTFOUND {
			reg.forget(key)
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		sess = got
	}
	if ttl > 0 && (!ok || c.sess != sess) {
		exp := now.Add(ttl)
		reg.cache.Put(key, cachedSession{sess: sess, expires: exp}, exp)
	}
	return sess, nil
}

// touch records that sess is in use: in the store when its LastSeen is
// older than touchEvery, so that the store is not written on every
// request. It returns nil when the session is gone meanwhile.
func (reg *sessionRegistry) touch(ctx context.Context, sess *epicme.MCPSession) (*epicme.MCPSession, error) {
	now := time.Now()
	if now.Sub(sess.LastSeen) < reg.touchEvery() {
		return sess, nil
	}
	key := epicme.SessionKey(sess.ID)
	if err := reg.store.TouchSession(ctx, sess.ID, now); epicme.ErrorCode(err) == epicme.ENOTFOUND {
		reg.forget(key)
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	cp := *sess
	cp.LastSeen = now
	if c, ok := reg.cache.Get(key, now); ok {
		reg.cache.Put(key, cachedSession{sess: &cp, expires: c.expires}, c.expires)
	}
	return &cp, nil
}

// forget drops a session from the cache.
func (reg *sessionRegistry) forget(key string) {
	reg.cache.Remove(key)
}

// setLive says whether Peers notices arrive; while they may be missed the
// cache is not used, and on either change it is emptied.
func (reg *sessionRegistry) setLive(live bool) {
	reg.mu.Lock()
	reg.live = live
	reg.cache.Clear()
	reg.mu.Unlock()
}

// hold records a request of sess in flight here, until release is called.
// A GET stream (cancel non-nil) can be ended by endLocal.
func (reg *sessionRegistry) hold(sess *epicme.MCPSession, cancel context.CancelFunc) (release func()) {
	key := epicme.SessionKey(sess.ID)
	reg.mu.Lock()
	l := reg.local[key]
	if l == nil {
		l = &localSession{id: sess.ID, userID: sess.UserID}
		reg.local[key] = l
	}
	var stream *int
	if cancel != nil {
		stream = new(int)
		if l.streams == nil {
			l.streams = map[*int]context.CancelFunc{}
		}
		l.streams[stream] = cancel
	} else {
		l.requests++
	}
	reg.mu.Unlock()
	return func() {
		reg.mu.Lock()
		defer reg.mu.Unlock()
		if stream != nil {
			delete(l.streams, stream)
		} else {
			l.requests--
		}
		reg.dropIfIdle(key, l)
	}
}

func (reg *sessionRegistry) dropIfIdle(key string, l *localSession) {
	if l.requests == 0 && len(l.streams) == 0 && l.registered == nil && reg.local[key] == l {
		delete(reg.local, key)
	}
}

// registered records mcp-go's session object of a session (OnRegisterSession).
// It is registered while a request of the session is held here.
func (reg *sessionRegistry) registered(session server.ClientSession) {
	key := epicme.SessionKey(session.SessionID())
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if l := reg.local[key]; l != nil {
		l.registered = session
	}
}

// unregistered forgets mcp-go's session object (OnUnregisterSession).
func (reg *sessionRegistry) unregistered(session server.ClientSession) {
	key := epicme.SessionKey(session.SessionID())
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if l := reg.local[key]; l != nil && l.registered == session {
		l.registered = nil
		reg.dropIfIdle(key, l)
	}
}

// localState reports what this instance holds of the session with key:
// its id, mcp-go's session object if registered here, whether requests or
// streams of it are open here (only then can a server request of it be
// waiting here), and whether GET streams are.
func (reg *sessionRegistry) localState(key string) (id string, registered server.ClientSession, active, streams bool) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	l := reg.local[key]
	if l == nil {
		return "", nil, false, false
	}
	return l.id, l.registered, l.requests > 0 || len(l.streams) > 0, len(l.streams) > 0
}

// registeredOf returns the ids of the sessions of userID registered here.
func (reg *sessionRegistry) registeredOf(userID string) []string {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	var ids []string
	for _, l := range reg.local {
		if l.userID == userID && l.registered != nil {
			ids = append(ids, l.id)
		}
	}
	return ids
}

// endLocal ends what this instance holds of a session ended elsewhere: its
// GET streams, and mcp-go's state (by a DELETE replayed to mcp-go, which
// does not end the stored session again).
func (reg *sessionRegistry) endLocal(key string) {
	reg.forget(key)
	if l := reg.endStreams(key); l != nil {
		reg.s.replay(http.MethodDelete, l.id, "", nil)
	}
}

// newSessionID returns a random session id: 128 bits from crypto/rand, as
// the transport requires (globally unique and cryptographically secure).
func newSessionID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return "mcp-session-" + hex.EncodeToString(b[:])
}

// startSession stores the session an initialize request begins, owned by
// its caller, with the capabilities and protocol version from the request.
// mcp-go then issues its id (Generate).
func (reg *sessionRegistry) startSession(ctx context.Context, c *epicme.Caller, body []byte) (*epicme.MCPSession, error) {
	var init struct {
		Params struct {
			ProtocolVersion string                 `json:"protocolVersion"`
			Capabilities    mcp.ClientCapabilities `json:"capabilities"`
		} `json:"params"`
	}
	// mcp-go answers a malformed initialize itself; the session it would
	// begin is stored with no capabilities.
	_ = json.Unmarshal(body, &init)
	caps, err := json.Marshal(init.Params.Capabilities)
	if err != nil || len(caps) > epicme.MaxSessionCapabilities {
		caps = []byte("{}")
	}
	version := init.Params.ProtocolVersion
	if len(version) > 64 {
		version = ""
	}
	sess := &epicme.MCPSession{
		ID:              newSessionID(),
		UserID:          c.User.ID,
		ClientID:        c.ClientID,
		ProtocolVersion: version,
		Capabilities:    caps,
		CreatedAt:       time.Now(),
	}
	if err := reg.store.CreateSession(ctx, sess); err != nil {
		return nil, err
	}
	sess.LastSeen = sess.CreatedAt
	return sess, nil
}

// end ends a session for good: in the store, in this instance's cache, and
// (by an "end" notice) on every other instance.
func (reg *sessionRegistry) end(ctx context.Context, id string) error {
	if _, err := reg.store.EndSession(ctx, id); err != nil {
		return err
	}
	key := epicme.SessionKey(id)
	reg.forget(key)
	reg.endStreams(key)
	reg.s.publish(ctx, peerMessage{Kind: kindEnd, Key: key})
	return nil
}

// endStreams ends the GET streams of a session held here, and returns what
// this instance holds of it.
func (reg *sessionRegistry) endStreams(key string) *localSession {
	reg.mu.Lock()
	l := reg.local[key]
	var cancels []context.CancelFunc
	if l != nil {
		for _, c := range l.streams {
			cancels = append(cancels, c)
		}
	}
	reg.mu.Unlock()
	for _, c := range cancels {
		c()
	}
	return l
}

// purge deletes the sessions idle for longer than SessionIdleTTL and the
// expired used requestStates from the store, every half TTL (at most every
// ten minutes), until ctx is done.
func (reg *sessionRegistry) purge(ctx context.Context) {
	every := max(min(reg.s.opts.SessionIdleTTL/2, 10*time.Minute), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := reg.store.DeleteIdleSessions(ctx, time.Now().Add(-reg.s.opts.SessionIdleTTL)); err != nil && ctx.Err() == nil {
				reg.s.logger.Warn("deleting idle sessions failed", "err", err)
			}
			if _, err := reg.store.DeleteExpiredRequestStates(ctx, time.Now()); err != nil && ctx.Err() == nil {
				reg.s.logger.Warn("deleting expired request states failed", "err", err)
			}
		}
	}
}

// Context values a request carries into mcp-go's session id manager.
type (
	// sessionCtxKey holds the *epicme.MCPSession serveHTTP found (or began)
	// for the request.
	sessionCtxKey struct{}
	// replayCtxKey marks a request this instance replays to mcp-go on
	// behalf of another instance, or to clean up a session ended elsewhere.
	replayCtxKey struct{}
)

func withSession(ctx context.Context, sess *epicme.MCPSession) context.Context {
	return context.WithValue(ctx, sessionCtxKey{}, sess)
}

// storedSession returns the stored session of the request on ctx, if any.
func storedSession(ctx context.Context) *epicme.MCPSession {
	sess, _ := ctx.Value(sessionCtxKey{}).(*epicme.MCPSession)
	return sess
}

// storedCaps returns the capabilities the client of the request's session
// declared at initialize, as stored.
func storedCaps(ctx context.Context) (mcp.ClientCapabilities, bool) {
	sess := storedSession(ctx)
	if sess == nil {
		return mcp.ClientCapabilities{}, false
	}
	var caps mcp.ClientCapabilities
	if err := json.Unmarshal(sess.Capabilities, &caps); err != nil {
		return mcp.ClientCapabilities{}, false
	}
	return caps, true
}

// ResolveSessionIdManager implements server.SessionIdManagerResolver; r is
// nil when mcp-go's idle sweeper ends a session.
func (reg *sessionRegistry) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	return sessionIDs{reg: reg, r: r}
}

// sessionIDs is the session id manager of one HTTP request.
type sessionIDs struct {
	reg *sessionRegistry
	r   *http.Request
}

// Generate returns the id of the session serveHTTP stored for this
// initialize request. Without one (no request, or a GET stream opened
// without an id, which serveHTTP refuses) it returns a random id that is
// stored nowhere, so every later request with it gets 404.
func (m sessionIDs) Generate() string {
	if m.r != nil {
		if sess := storedSession(m.r.Context()); sess != nil {
			return sess.ID
		}
	}
	return newSessionID()
}

// Validate accepts the session serveHTTP found for this request, and for
// other requests (replayed ones) a live stored session; anything else is an
// error, which mcp-go answers with 404.
func (m sessionIDs) Validate(id string) (bool, error) {
	ctx := context.Background()
	if m.r != nil {
		ctx = m.r.Context()
		if sess := storedSession(ctx); sess != nil && sess.ID == id {
			return false, nil
		}
	}
	sess, err := m.reg.lookup(ctx, id)
	if err != nil {
		return false, err
	}
	if sess == nil {
		return false, errors.New("unknown session")
	}
	return false, nil
}

// Terminate ends a session: on DELETE (serveHTTP has checked that it
// belongs to the caller) for good, on every instance. When mcp-go's idle
// sweeper calls it (r is nil), the session was idle on this instance only:
// it is ended for good only if the store says it is idle everywhere. mcp-go
// drops its own state of the session in every case.
func (m sessionIDs) Terminate(id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	if m.r != nil && m.r.Context().Value(replayCtxKey{}) != nil {
		return false, nil
	}
	ctx := context.Background()
	if m.r != nil {
		ctx = m.r.Context()
	} else {
		sess, err := m.reg.lookup(ctx, id)
		if err != nil || sess != nil {
			return false, nil
		}
	}
	if err := m.reg.end(ctx, id); err != nil {
		return false, err
	}
	return false, nil
}
