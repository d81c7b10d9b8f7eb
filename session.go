package epicme

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// MCPSession is a Streamable HTTP session of an MCP client of protocol
// revisions 2025-03-26 to 2025-11-25 (MCP basic/transports, "Session
// Management"). It is stored so that every instance sharing the database
// serves the session's requests, and so that it outlives a restart.
//
// A session id is never a credential: a session is bound to the user and
// the OAuth client that opened it, and the server honours its id only on
// requests authenticated as both (MCP security best practices, "Session
// Hijacking"). Stores keep only the SHA-256 of the id (SessionKey).
type MCPSession struct {
	// ID is the id the client holds (Mcp-Session-Id). Stores never keep it:
	// a session read back carries the ID it was looked up with.
	ID string
	// UserID and ClientID are who opened the session: the user, and the
	// OAuth client id of the token (empty without OAuth).
	UserID   string
	ClientID string
	// ProtocolVersion is the revision the client asked for at initialize.
	ProtocolVersion string
	// Capabilities is the JSON of the capabilities the client declared at
	// initialize (elicitation, sampling, roots...), at most
	// MaxSessionCapabilities bytes.
	Capabilities []byte
	// CreatedAt is when the session began; LastSeen when a request last
	// used it, to a precision the server chooses (it is not written on
	// every request).
	CreatedAt time.Time
	LastSeen  time.Time
	// Subscriptions are the resource URIs the session subscribed to
	// (resources/subscribe), sorted.
	Subscriptions []string
}

// StoredCapabilities is Capabilities as the stores keep it: the JSON the
// client declared, or an empty object when there is none.
func (s *MCPSession) StoredCapabilities() string {
	if len(s.Capabilities) == 0 {
		return "{}"
	}
	return string(s.Capabilities)
}

// Limits of a stored session.
const (
	MaxSessionCapabilities  = 8 << 10
	MaxSessionSubscriptions = 100
	MaxSubscriptionURI      = 2048
)

// SessionKey is what stores keep of a session id: the hex SHA-256 of the
// id. Session ids are 128 random bits, so an unsalted hash is as hard to
// reverse as the id is to guess; a database dump does not give them away.
func SessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// SessionStore keeps MCP sessions.
type SessionStore interface {
	// CreateSession stores a new session (ID, UserID, ClientID,
	// ProtocolVersion, Capabilities, CreatedAt; LastSeen is set to
	// CreatedAt). An ID already stored is ECONFLICT; an unknown user
	// ENOTFOUND. Deleting the user deletes its sessions.
	CreateSession(ctx context.Context, s *MCPSession) error
	// GetSession returns the session with id and its subscriptions, or
	// ENOTFOUND when there is none, it was ended, or it was last seen
	// before idleSince (an idle session is as good as ended).
	GetSession(ctx context.Context, id string, idleSince time.Time) (*MCPSession, error)
	// TouchSession records that the session was used at now (LastSeen
	// only ever moves forward). ENOTFOUND when there is no such session.
	TouchSession(ctx context.Context, id string, now time.Time) error
	// EndSession deletes a session and its subscriptions, and reports
	// whether there was one.
	EndSession(ctx context.Context, id string) (bool, error)
	// Subscribe adds uri to the subscriptions of the session with id if it
	// belongs to userID; subscribing twice is one subscription. A session
	// of another user answers ENOTFOUND, like a missing one; more than
	// MaxSessionSubscriptions is ECONFLICT.
	Subscribe(ctx context.Context, userID, id, uri string) error
	// Unsubscribe removes uri from the subscriptions of the session with id
	// if it belongs to userID. Removing what is not there is no error.
	Unsubscribe(ctx context.Context, userID, id, uri string) error
	// DeleteIdleSessions deletes the sessions last seen before idleSince
	// and returns how many.
	DeleteIdleSessions(ctx context.Context, idleSince time.Time) (int, error)

	// UseRequestState records that the multi round-trip request (MCP
	// 2026-07-28) of this requestState completed, until expires, when the
	// state is refused anyway; stores keep only its SessionKey. A state
	// recorded before is ECONFLICT: of any number of calls with one state,
	// on any instance sharing the store, exactly one succeeds. The MCP
	// adapter claims a tag suggestion that waited for a stream the same
	// way, so that one instance asks it.
	UseRequestState(ctx context.Context, state string, expires time.Time) error
	// DeleteExpiredRequestStates forgets the states that expired at or
	// before now and returns how many.
	DeleteExpiredRequestStates(ctx context.Context, now time.Time) (int, error)
}

// ValidateSession checks a session before it is stored.
func ValidateSession(s *MCPSession) error {
	switch {
	case s == nil || s.ID == "":
		return Invalid("id", "a session needs an id")
	case s.UserID == "":
		return Invalid("userId", "a session needs a user")
	case len(s.Capabilities) > MaxSessionCapabilities:
		return Invalid("capabilities", "client capabilities are longer than %d bytes", MaxSessionCapabilities)
	case len(s.ProtocolVersion) > 64 || len(s.ClientID) > 2048:
		return Invalid("session", "protocol version or client id is too long")
	}
	return nil
}

// ValidateSubscription checks a resource URI before it is subscribed.
func ValidateSubscription(uri string) error {
	if uri == "" || len(uri) > MaxSubscriptionURI {
		return Invalid("uri", "a subscription needs a resource URI of at most %d bytes", MaxSubscriptionURI)
	}
	return nil
}
