package authserver

import (
	"context"
	"net/http"

	"github.com/epicme/epicme"
)

// Sessions of the sign-in and account pages are kept on the server
// (Store.CreateSignInSession): the cookie holds 256 random bits and the
// store only their hash. A session lasts Config.SessionTTL from sign-in,
// and ends earlier when the user signs out, changes or has their password
// reset, is disabled or deleted; a copied cookie ends with it (OWASP
// Session Management Cheat Sheet, "Session Expiration").

// maxSessionCookie bounds the session cookie read: a real one is 43 bytes.
const maxSessionCookie = 64

// EndUserSessions signs a user out of every browser: the sessions of the
// sign-in and account pages end on the server, whoever holds their
// cookies. Disabling an account and resetting its password from outside
// the pages (epicme user disable, epicme user reset-password) call it; a
// password change on the account page ends the user's other sessions the
// same way.
func EndUserSessions(ctx context.Context, store Store, userID string) error {
	return store.DeleteUserSignInSessions(ctx, userID, "")
}

// sessionHash returns the hash of the session id the request's cookie
// holds, or "".
func (s *Server) sessionHash(r *http.Request) string {
	ck, err := r.Cookie(s.cookies.name("epicme_session"))
	if err != nil || ck.Value == "" || len(ck.Value) > maxSessionCookie {
		return ""
	}
	return HashToken(ck.Value)
}

// sessionUser returns the signed-in local user, or nil: the session must
// be stored and unexpired, and its user enabled.
func (s *Server) sessionUser(r *http.Request) *epicme.User {
	h := s.sessionHash(r)
	if h == "" {
		return nil
	}
	ctx := r.Context()
	sess, err := s.store.SignInSession(ctx, h)
	if err != nil {
		if epicme.ErrorCode(err) != epicme.ENOTFOUND {
			s.log.ErrorContext(ctx, "reading a sign-in session", "err", err)
		}
		return nil
	}
	if !s.now().Before(sess.ExpiresAt) {
		return nil
	}
	u, err := s.users.UserByID(ctx, sess.UserID)
	if err != nil || u.Disabled || u.Issuer != epicme.LocalIssuer {
		return nil
	}
	return u
}

// startSession signs the user in on this browser with a new session id,
// and ends the session the browser held before, if any (no session
// fixation).
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, user *epicme.User) error {
	ctx := r.Context()
	if old := s.sessionHash(r); old != "" {
		if err := s.store.DeleteSignInSession(ctx, old); err != nil {
			return err
		}
	}
	id := randomToken(32)
	now := s.now()
	if err := s.store.CreateSignInSession(ctx, &SignInSession{Hash: HashToken(id), UserID: user.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}); err != nil {
		return err
	}
	http.SetCookie(w, s.cookies.cookie("epicme_session", id, s.cfg.SessionTTL))
	return nil
}

// endSession ends the browser's session on the server and deletes its
// cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, s.cookies.expired("epicme_session"))
	if h := s.sessionHash(r); h != "" {
		return s.store.DeleteSignInSession(r.Context(), h)
	}
	return nil
}
