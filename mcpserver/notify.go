package mcpserver

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Subscriptions (resources/subscribe, MCP 2025-03-26..2025-11-25
// server/resources, "Subscriptions") are kept with the session in the
// session store, for the user who owns the session, so that a change made
// by one user is announced only to that user's sessions, whichever instance
// the subscription or the change arrived at. mcp-go acknowledges
// subscriptions but never sends notifications/resources/updated itself.

// localSubscriptions holds the subscriptions of sessions that are not
// stored: stdio and in-process sessions, which live as long as this
// process. The keys are mcp-go session ids.
type localSubscriptions struct {
	mu       sync.Mutex
	sessions map[string]*localSubscriber
}

type localSubscriber struct {
	userID string
	uris   map[string]bool
}

func (l *localSubscriptions) add(sessionID, userID, uri string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sessions == nil {
		l.sessions = map[string]*localSubscriber{}
	}
	sub := l.sessions[sessionID]
	if sub == nil || sub.userID != userID {
		sub = &localSubscriber{userID: userID, uris: map[string]bool{}}
		l.sessions[sessionID] = sub
	}
	sub.uris[uri] = true
}

func (l *localSubscriptions) remove(sessionID, uri string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if sub := l.sessions[sessionID]; sub != nil {
		delete(sub.uris, uri)
	}
}

func (l *localSubscriptions) drop(sessionID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.sessions, sessionID)
}

// watchers returns the sessions of userID subscribed to uri.
func (l *localSubscriptions) watchers(userID, uri string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id, sub := range l.sessions {
		if sub.userID == userID && sub.uris[uri] {
			out = append(out, id)
		}
	}
	return out
}

func (s *Server) subscribed(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
	session := server.ClientSessionFromContext(ctx)
	c, err := s.caller(ctx)
	if session == nil || err != nil || session.SessionID() == "" {
		return
	}
	if !s.allows(c, "resources/subscribe", req.Params.URI) {
		return
	}
	if storedSession(ctx) == nil {
		s.localSubs.add(session.SessionID(), c.User.ID, req.Params.URI)
		return
	}
	if err := s.sessionStore.Subscribe(ctx, c.User.ID, session.SessionID(), req.Params.URI); err != nil {
		s.logger.InfoContext(ctx, "subscription not recorded", "uri", req.Params.URI, "err", err)
	}
}

func (s *Server) unsubscribed(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
	session := server.ClientSessionFromContext(ctx)
	c, err := s.caller(ctx)
	if session == nil || err != nil || session.SessionID() == "" {
		return
	}
	if storedSession(ctx) == nil {
		s.localSubs.remove(session.SessionID(), req.Params.URI)
		return
	}
	if err := s.sessionStore.Unsubscribe(ctx, c.User.ID, session.SessionID(), req.Params.URI); err != nil {
		s.logger.InfoContext(ctx, "unsubscription not recorded", "uri", req.Params.URI, "err", err)
	}
}

// notifyUpdated sends notifications/resources/updated for each uri to the
// sessions of userID that subscribed to it: those registered on this
// instance at once, those registered on others through Peers.
func (s *Server) notifyUpdated(userID string, uris ...string) {
	s.deliverUpdates(userID, uris)
	if s.opts.Peers != nil {
		go s.publish(context.Background(), peerMessage{Kind: kindUpdated, UserID: userID, URIs: uris})
	}
}

// deliverUpdates sends the notifications for the sessions of userID that
// mcp-go holds on this instance (which began here, or whose GET stream is
// open here), reading their subscriptions from the store.
func (s *Server) deliverUpdates(userID string, uris []string) {
	for _, uri := range uris {
		for _, id := range s.localSubs.watchers(userID, uri) {
			s.sendUpdated(id, uri)
		}
	}
	ids := s.sessions.registeredOf(userID)
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idleSince := time.Now().Add(-s.opts.SessionIdleTTL)
	for _, id := range ids {
		sess, err := s.sessionStore.GetSession(ctx, id, idleSince)
		if err != nil || sess.UserID != userID {
			continue
		}
		for _, uri := range uris {
			if !slices.Contains(sess.Subscriptions, uri) {
				continue
			}
			s.sendUpdated(id, uri)
		}
	}
}

func (s *Server) sendUpdated(sessionID, uri string) {
	err := s.mcp.SendNotificationToSpecificClient(sessionID, mcp.MethodNotificationResourceUpdated, map[string]any{"uri": uri})
	if err != nil {
		s.logger.Debug("resource update not delivered", "uri", uri, "err", err)
	}
}
