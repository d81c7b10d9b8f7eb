package mcpserver

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/epicme/epicme"
)

// memSessions is the session store of a Server whose journal store keeps
// no sessions: in memory, for one instance until it stops.
type memSessions struct {
	mu       sync.Mutex
	sessions map[string]*epicme.MCPSession // by epicme.SessionKey
	used     map[string]time.Time          // completed requestStates' expiry, by epicme.SessionKey
}

func newMemSessions() *memSessions {
	return &memSessions{sessions: map[string]*epicme.MCPSession{}, used: map[string]time.Time{}}
}

var _ epicme.SessionStore = (*memSessions)(nil)

func (m *memSessions) CreateSession(_ context.Context, s *epicme.MCPSession) error {
	if err := epicme.ValidateSession(s); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := epicme.SessionKey(s.ID)
	if _, ok := m.sessions[key]; ok {
		return epicme.Errorf(epicme.ECONFLICT, "a session with this id exists")
	}
	cp := *s
	cp.ID, cp.LastSeen, cp.Subscriptions = "", s.CreatedAt, nil
	m.sessions[key] = &cp
	return nil
}

func (m *memSessions) GetSession(_ context.Context, id string, idleSince time.Time) (*epicme.MCPSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[epicme.SessionKey(id)]
	if !ok || s.LastSeen.Before(idleSince) {
		return nil, epicme.Errorf(epicme.ENOTFOUND, "session not found")
	}
	cp := *s
	cp.ID = id
	cp.Subscriptions = slices.Clone(s.Subscriptions)
	return &cp, nil
}

func (m *memSessions) TouchSession(_ context.Context, id string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[epicme.SessionKey(id)]
	if !ok {
		return epicme.Errorf(epicme.ENOTFOUND, "session not found")
	}
	if now.After(s.LastSeen) {
		s.LastSeen = now
	}
	return nil
}

func (m *memSessions) EndSession(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := epicme.SessionKey(id)
	_, ok := m.sessions[key]
	delete(m.sessions, key)
	return ok, nil
}

func (m *memSessions) Subscribe(_ context.Context, userID, id, uri string) error {
	if err := epicme.ValidateSubscription(uri); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[epicme.SessionKey(id)]
	if !ok || s.UserID != userID {
		return epicme.Errorf(epicme.ENOTFOUND, "session not found")
	}
	i, found := slices.BinarySearch(s.Subscriptions, uri)
	if found {
		return nil
	}
	if len(s.Subscriptions) >= epicme.MaxSessionSubscriptions {
		return epicme.Errorf(epicme.ECONFLICT, "a session may subscribe to at most %d resources", epicme.MaxSessionSubscriptions)
	}
	s.Subscriptions = slices.Insert(s.Subscriptions, i, uri)
	return nil
}

func (m *memSessions) Unsubscribe(_ context.Context, userID, id, uri string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[epicme.SessionKey(id)]
	if ok && s.UserID == userID {
		if i, found := slices.BinarySearch(s.Subscriptions, uri); found {
			s.Subscriptions = slices.Delete(s.Subscriptions, i, i+1)
		}
	}
	return nil
}

func (m *memSessions) DeleteIdleSessions(_ context.Context, idleSince time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, s := range m.sessions {
		if s.LastSeen.Before(idleSince) {
			delete(m.sessions, k)
			n++
		}
	}
	return n, nil
}

func (m *memSessions) UseRequestState(_ context.Context, state string, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := epicme.SessionKey(state)
	if _, ok := m.used[key]; ok {
		return epicme.Errorf(epicme.ECONFLICT, "this requestState was used already")
	}
	m.used[key] = expires
	return nil
}

func (m *memSessions) DeleteExpiredRequestStates(_ context.Context, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, exp := range m.used {
		if !exp.After(now) {
			delete(m.used, k)
			n++
		}
	}
	return n, nil
}
