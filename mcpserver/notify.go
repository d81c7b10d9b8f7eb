package mcpserver

import (
	"context"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// subscriptions records which sessions subscribed to which resources
// (resources/subscribe, MCP 2025-03-26..2025-11-25 server/resources,
// "Subscriptions"), and for which user, so that a change made by one user is
// announced only to that user's sessions. mcp-go acknowledges subscriptions
// but never sends notifications/resources/updated itself.
type subscriptions struct {
	mu       sync.Mutex
	sessions map[string]*subscriber // by session id
}

type subscriber struct {
	userID string
	uris   map[string]bool
}

func newSubscriptions() *subscriptions {
	return &subscriptions{sessions: map[string]*subscriber{}}
}

func (s *subscriptions) add(sessionID, userID, uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.sessions[sessionID]
	if sub == nil || sub.userID != userID {
		sub = &subscriber{userID: userID, uris: map[string]bool{}}
		s.sessions[sessionID] = sub
	}
	sub.uris[uri] = true
}

func (s *subscriptions) remove(sessionID, uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub := s.sessions[sessionID]; sub != nil {
		delete(sub.uris, uri)
	}
}

func (s *subscriptions) dropSession(sessionID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sessionID)
}

// watchers returns the sessions of userID subscribed to uri.
func (s *subscriptions) watchers(userID, uri string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, sub := range s.sessions {
		if sub.userID == userID && sub.uris[uri] {
			out = append(out, id)
		}
	}
	return out
}

func (s *Server) subscribed(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
	session := server.ClientSessionFromContext(ctx)
	c, err := s.caller(ctx)
	if session == nil || err != nil {
		return
	}
	if need, ok := resourceScopes(req.Params.URI); !ok || !c.Scopes.Has(need...) {
		return
	}
	s.subs.add(session.SessionID(), c.User.ID, req.Params.URI)
}

func (s *Server) unsubscribed(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
	if session := server.ClientSessionFromContext(ctx); session != nil {
		s.subs.remove(session.SessionID(), req.Params.URI)
	}
}

// notifyUpdated sends notifications/resources/updated for each uri to the
// sessions of userID that subscribed to it.
func (s *Server) notifyUpdated(userID string, uris ...string) {
	for _, uri := range uris {
		for _, sessionID := range s.subs.watchers(userID, uri) {
			err := s.mcp.SendNotificationToSpecificClient(sessionID, mcp.MethodNotificationResourceUpdated, map[string]any{"uri": uri})
			if err != nil {
				s.logger.Debug("resource update not delivered", "session", sessionID, "uri", uri, "err", err)
			}
		}
	}
}
