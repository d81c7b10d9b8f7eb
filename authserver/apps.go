package authserver

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/epicme/epicme"
)

// Paths of the connected-apps page.
const (
	AppsPath       = "/oauth/apps"
	AppsRevokePath = "/oauth/apps/revoke"
)

type appItem struct {
	ClientID, Name, Scopes, Since string
}

// serveApps shows the signed-in user the clients they consented to, each
// with a button that withdraws the consent and revokes its tokens.
func (s *Server) serveApps(w http.ResponseWriter, r *http.Request) {
	user := s.sessionUser(r)
	if user == nil {
		s.showSignIn(w, r, nil, http.StatusOK, "", "")
		return
	}
	consents, err := s.store.ListConsents(r.Context(), user.ID)
	if err != nil {
		s.log.ErrorContext(r.Context(), "listing consents", "err", err)
		s.showError(w, r, http.StatusInternalServerError, "Internal error.")
		return
	}
	var apps []appItem
	for _, c := range consents {
		name := c.ClientID
		if cl, err := s.lookupClient(r.Context(), c.ClientID); err == nil {
			name = clientDisplayName(cl)
		}
		var scopes []string
		for _, sc := range strings.Fields(c.Scope) {
			if d := epicme.ScopeDescriptions[sc]; d != "" {
				scopes = append(scopes, d)
			} else {
				scopes = append(scopes, sc)
			}
		}
		apps = append(apps, appItem{ClientID: c.ClientID, Name: name, Scopes: strings.Join(scopes, "; "), Since: c.CreatedAt.Format("2 January 2006")})
	}
	s.render(w, r, http.StatusOK, s.pages.apps, map[string]any{
		"Title":   "Connected applications",
		"Email":   user.Email,
		"Apps":    apps,
		"Action":  AppsRevokePath,
		"CSRF":    s.ensureCSRF(w, r),
		"Revoked": r.URL.Query().Get("revoked"),
	})
}

// serveAppsRevoke withdraws the user's consent to one client and revokes
// every grant the user gave it, access tokens included, at once.
func (s *Server) serveAppsRevoke(w http.ResponseWriter, r *http.Request) {
	if !s.parsePageForm(w, r) {
		return
	}
	user := s.sessionUser(r)
	if user == nil {
		s.showSignIn(w, r, nil, http.StatusUnauthorized, "", "Your session has ended. Sign in again.")
		return
	}
	clientID := r.PostForm.Get("client_id")
	ctx := r.Context()
	if err := s.store.DeleteConsent(ctx, user.ID, clientID, s.now()); err != nil {
		s.log.ErrorContext(ctx, "revoking an app", "err", err)
		s.showError(w, r, http.StatusInternalServerError, "Internal error.")
		return
	}
	if err := s.revoked.sync(ctx); err != nil {
		s.log.ErrorContext(ctx, "syncing revocations", "err", err)
	}
	s.log.InfoContext(ctx, "user revoked an app", "user", user.ID, "client_id", clientID)
	name := clientID
	if cl, err := s.lookupClient(ctx, clientID); err == nil {
		name = clientDisplayName(cl)
	}
	http.Redirect(w, r, AppsPath+"?revoked="+url.QueryEscape(name), http.StatusSeeOther)
}
