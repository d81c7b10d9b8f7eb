package authserver

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/epicme/epicme"
)

// Paths of the connected-apps page.
const (
	AppsPath       = "/oauth/apps"
	AppsRevokePath = "/oauth/apps/revoke"
)

// appItem is one connected application: what the user allowed it, and
// when its grants were first and last used.
type appItem struct {
	ClientID, Name, First, Last, Sessions string
	Scopes                                []string
	// Machine marks an automation of the user's (a machine client).
	Machine bool
}

// serveApps shows the signed-in user the clients they consented to, each
// with a button that withdraws the consent and revokes its tokens.
func (s *Server) serveApps(w http.ResponseWriter, r *http.Request) {
	user := s.sessionUser(r)
	if user == nil {
		s.showSignInPage(w, r, nil, http.StatusOK, "", "", "", AppsPath)
		return
	}
	ctx := s.withSource(r)
	// Show the uses seen up to now, not up to the last periodic flush.
	s.flushUsage(ctx)
	consents, err := s.store.ListConsents(ctx, user.ID)
	if err != nil {
		s.busyOrInternal(w, r, err)
		return
	}
	grants, err := s.store.ListGrants(ctx, GrantFilter{UserID: user.ID})
	if err != nil {
		s.busyOrInternal(w, r, err)
		return
	}
	type use struct {
		first, last time.Time
		n           int
	}
	uses := map[string]*use{}
	for _, g := range grants {
		u := uses[g.ClientID]
		if u == nil {
			u = &use{first: g.CreatedAt, last: g.LastUsedAt}
			uses[g.ClientID] = u
		}
		u.n++
		if g.CreatedAt.Before(u.first) {
			u.first = g.CreatedAt
		}
		if g.LastUsedAt.After(u.last) {
			u.last = g.LastUsedAt
		}
	}
	var apps []appItem
	for _, c := range consents {
		item := appItem{ClientID: c.ClientID, Name: c.ClientID, First: "not yet", Last: "not yet"}
		machine := false
		if cl, err := s.lookupClient(ctx, c.ClientID); err == nil {
			item.Name = clientDisplayName(cl)
			machine = cl.Machine()
		}
		item.Machine = machine
		for _, sc := range strings.Fields(c.Scope) {
			if d := epicme.ScopeDescriptions[sc]; d != "" {
				item.Scopes = append(item.Scopes, d)
			} else {
				item.Scopes = append(item.Scopes, sc)
			}
		}
		if u := uses[c.ClientID]; u != nil {
			item.First, item.Last = s.when(u.first), s.when(u.last)
			switch {
			case machine:
				// Each token it gets is a grant of its own.
			case u.n == 1:
				item.Sessions = "1 active sign-in"
			default:
				item.Sessions = fmt.Sprintf("%d active sign-ins", u.n)
			}
		}
		apps = append(apps, item)
	}
	revoked := ""
	if id := r.URL.Query().Get("revoked"); id != "" {
		// The query names a client id; show its name, never the raw text.
		revoked = "The application"
		if cl, err := s.lookupClient(ctx, id); err == nil {
			revoked = clientDisplayName(cl)
		}
	}
	s.render(w, r, http.StatusOK, s.pages.apps, map[string]any{
		"Title":    "Connected apps",
		"Nav":      "apps",
		"Email":    user.Email,
		"Apps":     apps,
		"Action":   AppsRevokePath,
		"CSRF":     s.ensureCSRF(w, r),
		"Revoked":  revoked,
		"TokenTTL": humanDuration(s.cfg.AccessTokenTTL),
	})
}

// when formats a time for the pages, relative to now when recent.
func (s *Server) when(t time.Time) string {
	d := s.now().Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return humanDuration(d.Truncate(time.Minute)) + " ago"
	case d < 24*time.Hour:
		return humanDuration(d.Truncate(time.Hour)) + " ago"
	}
	return t.UTC().Format("2 January 2006")
}

// humanDuration says a duration in words: "15 minutes", "1 hour".
func humanDuration(d time.Duration) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d >= time.Minute:
		return plural(int(d/time.Minute), "minute")
	}
	return plural(int(d/time.Second), "second")
}

// serveAppsRevoke withdraws the user's consent to one client and revokes
// every grant the user gave it, access tokens included, at once.
func (s *Server) serveAppsRevoke(w http.ResponseWriter, r *http.Request) {
	if !s.parsePageForm(w, r) {
		return
	}
	user := s.sessionUser(r)
	if user == nil {
		s.showSignInPage(w, r, nil, http.StatusUnauthorized, "", "Your session has ended. Sign in again.", "", AppsPath)
		return
	}
	clientID := r.PostForm.Get("client_id")
	ctx := r.Context()
	if err := s.store.DeleteConsent(ctx, user.ID, clientID, s.now()); err != nil {
		s.busyOrInternal(w, r, err)
		return
	}
	// A machine client of this user's went with the consent.
	s.clients.forget(clientID)
	if err := s.revoked.sync(ctx); err != nil {
		s.log.ErrorContext(ctx, "syncing revocations", "err", err)
	}
	s.log.InfoContext(ctx, "user revoked an app", "user", user.ID, "client_id", clientID)
	http.Redirect(w, r, AppsPath+"?"+url.Values{"revoked": {clientID}}.Encode(), http.StatusSeeOther)
}
