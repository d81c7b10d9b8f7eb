package authserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/epicme/epicme"
)

// signUpsPerSource caps the accounts one network source may create per
// hour.
const signUpsPerSource = 10

// serveSignUp shows and handles the sign-up form, when Config.AllowSignUp
// is set. An account created in the middle of an authorization goes on to
// the consent page.
func (s *Server) serveSignUp(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.AllowSignUp {
		s.render(w, r, http.StatusNotFound, s.pages.errorPage, map[string]any{
			"Title": "Sign-up is off", "Error": "This server does not let people create accounts.",
			"Hint": "Ask the person who runs it to create one for you.",
		})
		return
	}
	var a *authzRequest
	if r.Method == http.MethodGet {
		if raw := r.URL.Query().Get("request"); raw != "" {
			q, err := url.ParseQuery(raw)
			if err != nil {
				s.showError(w, r, http.StatusBadRequest, "The link carries a malformed request.")
				return
			}
			if a = s.authorizeStep(w, r, q); a == nil {
				return
			}
		}
		s.showSignUp(w, r, a, http.StatusOK, "", "")
		return
	}
	if !s.parsePageForm(w, r) {
		return
	}
	if r.PostForm.Get("request") != "" {
		if a = s.carriedRequest(w, r); a == nil {
			return
		}
	}
	ctx := r.Context()
	in := epicme.NewUser{Issuer: epicme.LocalIssuer, Email: r.PostForm.Get("email")}
	pw := r.PostForm.Get("password")
	if err := in.Validate(); err != nil {
		s.showSignUp(w, r, a, http.StatusBadRequest, in.Email, epicme.ErrorMessage(err))
		return
	}
	if err := epicme.ValidatePassword(pw); err != nil {
		s.showSignUp(w, r, a, http.StatusBadRequest, in.Email, epicme.ErrorMessage(err))
		return
	}
	if pw != r.PostForm.Get("confirm") {
		s.showSignUp(w, r, a, http.StatusBadRequest, in.Email, "The two passwords differ.")
		return
	}
	if key, aggregate, limited := s.sourceKeys(r); limited {
		ok, err := s.countSource(ctx, "signup-source", key, aggregate, time.Hour, signUpsPerSource)
		if err != nil {
			s.log.ErrorContext(ctx, "counting sign-ups", "err", err)
			s.showError(w, r, http.StatusInternalServerError, "Internal error.")
			return
		}
		if !ok {
			s.showSignUp(w, r, a, http.StatusTooManyRequests, in.Email, "Too many accounts were created from your network. Try again in an hour.")
			return
		}
	}
	hash, err := s.passwords.hash(ctx, pw)
	if err != nil {
		s.busyOrInternal(w, r, err)
		return
	}
	in.PasswordHash = hash
	user, err := s.users.CreateUser(ctx, in)
	if epicme.ErrorCode(err) == epicme.ECONFLICT {
		s.showSignUp(w, r, a, http.StatusConflict, in.Email, "An account with this email already exists. Sign in instead.")
		return
	}
	if err != nil {
		s.log.ErrorContext(ctx, "creating an account", "err", err)
		s.showError(w, r, http.StatusInternalServerError, "Internal error.")
		return
	}
	s.log.InfoContext(ctx, "account created by sign-up", "user", user.ID)
	if err := s.startSession(w, r, user); err != nil {
		s.busyOrInternal(w, r, err)
		return
	}
	if a == nil {
		http.Redirect(w, r, AccountPath, http.StatusSeeOther)
		return
	}
	s.consentOrCode(w, r, a, user)
}

func (s *Server) showSignUp(w http.ResponseWriter, r *http.Request, a *authzRequest, status int, email, msg string) {
	name, raw := "", ""
	signIn := AccountPath
	if a != nil {
		name, raw = clientDisplayName(a.client), a.raw
		signIn = AuthorizePath + "?" + raw
		allowRedirectTo(w, a.redirectURI)
	}
	s.render(w, r, status, s.pages.signUp, map[string]any{
		"Title":       "Create an account",
		"ClientName":  name,
		"Action":      SignUpPath,
		"CSRF":        s.ensureCSRF(w, r),
		"Request":     raw,
		"Email":       email,
		"Error":       msg,
		"MinPassword": epicme.MinPasswordLen,
		"SignInURL":   signIn,
	})
}

func (s *Server) busyOrInternal(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errBusy) {
		w.Header().Set("Retry-After", "5")
		s.showError(w, r, http.StatusServiceUnavailable, "The server is busy. Try again in a few seconds.")
		return
	}
	s.log.ErrorContext(r.Context(), "page error", "path", r.URL.Path, "err", err)
	s.showError(w, r, http.StatusInternalServerError, "Internal error.")
}

// serveSignOut ends the session of this browser, on the server too. Inside an authorization
// (the consent page's "Not you?"), it shows the sign-in form again for the
// same request.
func (s *Server) serveSignOut(w http.ResponseWriter, r *http.Request) {
	if !s.parsePageForm(w, r) {
		return
	}
	if err := s.endSession(w, r); err != nil {
		s.busyOrInternal(w, r, err)
		return
	}
	if r.PostForm.Get("request") != "" {
		a := s.carriedRequest(w, r)
		if a == nil {
			return
		}
		s.showSignInPage(w, r, a, http.StatusOK, "", "", "You are signed out. Sign in with the account the application should use.", "")
		return
	}
	s.showSignInPage(w, r, nil, http.StatusOK, "", "", "You are signed out.", "")
}

// accountNotices are the messages the account page shows after an action;
// the query names one, so no text from the address reaches the page.
var accountNotices = map[string]string{
	"password": "Your password is changed. Other browsers signed in to your account are signed out.",
}

// serveAccount shows the account page: change password, export, delete.
func (s *Server) serveAccount(w http.ResponseWriter, r *http.Request) {
	user := s.sessionUser(r)
	if user == nil {
		s.showSignInPage(w, r, nil, http.StatusOK, "", "", "", AccountPath)
		return
	}
	s.showAccount(w, r, user, http.StatusOK, accountNotices[r.URL.Query().Get("done")], "")
}

func (s *Server) showAccount(w http.ResponseWriter, r *http.Request, user *epicme.User, status int, notice, msg string) {
	s.showAccountWith(w, r, user, status, notice, msg, nil)
}

// showAccount renders the account page; created, when not nil, is the
// machine client just made, whose secret is shown this once.
func (s *Server) showAccountWith(w http.ResponseWriter, r *http.Request, user *epicme.User, status int, notice, msg string, created map[string]string) {
	export := ""
	if s.cfg.Journal != nil {
		export = AccountExportPath
	}
	var scopes []map[string]string
	for _, sc := range s.scopes {
		scopes = append(scopes, map[string]string{"Name": sc, "Description": epicme.ScopeDescriptions[sc]})
	}
	s.render(w, r, status, s.pages.account, map[string]any{
		"MachineAction":  AccountMachinePath,
		"Scopes":         scopes,
		"Created":        created,
		"Title":          "Your account",
		"Nav":            "account",
		"Email":          user.Email,
		"Since":          user.CreatedAt.UTC().Format("2 January 2006"),
		"CSRF":           s.ensureCSRF(w, r),
		"Notice":         notice,
		"Error":          msg,
		"MinPassword":    epicme.MinPasswordLen,
		"PasswordAction": AccountPasswordPath,
		"ExportAction":   export,
		"DeleteAction":   AccountDeletePath,
	})
}

// pageUser parses a posted form of the account pages, checks its CSRF
// token and returns the signed-in user; it answers and returns nil when any
// of that fails.
func (s *Server) pageUser(w http.ResponseWriter, r *http.Request) *epicme.User {
	if !s.parsePageForm(w, r) {
		return nil
	}
	user := s.sessionUser(r)
	if user == nil {
		s.showSignInPage(w, r, nil, http.StatusUnauthorized, "", "Your session has ended. Sign in again.", "", AccountPath)
	}
	return user
}

// reauthenticate checks the signed-in user's password again before a
// sensitive change, with the sign-in's backoff. It answers and returns ""
// when the password is wrong, else the current hash.
func (s *Server) reauthenticate(w http.ResponseWriter, r *http.Request, user *epicme.User, pw string) string {
	now := s.now()
	key := signInPairKey(user.Email, s.signInSource(r))
	if d := s.backoff.wait(key, now); d > 0 {
		s.showAccount(w, r, user, http.StatusTooManyRequests, "", tooMany(d))
		return ""
	}
	u, hash, err := s.checkPassword(r.Context(), user.Email, pw)
	if err != nil {
		s.busyOrInternal(w, r, err)
		return ""
	}
	if u == nil || u.ID != user.ID {
		s.backoff.fail(key, backoffFreeFailures, now)
		s.showAccount(w, r, user, http.StatusUnauthorized, "", "The password is wrong.")
		return ""
	}
	return hash
}

// serveChangePassword replaces the signed-in user's password and ends
// every session of the user; this browser gets a new one.
func (s *Server) serveChangePassword(w http.ResponseWriter, r *http.Request) {
	user := s.pageUser(w, r)
	if user == nil {
		return
	}
	pw := r.PostForm.Get("new")
	if err := epicme.ValidatePassword(pw); err != nil {
		s.showAccount(w, r, user, http.StatusBadRequest, "", epicme.ErrorMessage(err))
		return
	}
	if pw != r.PostForm.Get("confirm") {
		s.showAccount(w, r, user, http.StatusBadRequest, "", "The two new passwords differ.")
		return
	}
	if s.reauthenticate(w, r, user, r.PostForm.Get("current")) == "" {
		return
	}
	ctx := r.Context()
	hash, err := s.passwords.hash(ctx, pw)
	if err != nil {
		s.busyOrInternal(w, r, err)
		return
	}
	if err := s.users.SetPasswordHash(ctx, user.ID, hash); err != nil {
		s.busyOrInternal(w, r, err)
		return
	}
	if err := EndUserSessions(ctx, s.store, user.ID); err != nil {
		s.busyOrInternal(w, r, err)
		return
	}
	s.log.InfoContext(ctx, "user changed their password", "user", user.ID)
	if err := s.startSession(w, r, user); err != nil {
		s.busyOrInternal(w, r, err)
		return
	}
	http.Redirect(w, r, AccountPath+"?done=password", http.StatusSeeOther)
}

// serveDeleteAccount deletes the signed-in user's account and journal,
// after they typed their email and password. Their tokens are revoked
// first, so they stop at once here and at introspection.
func (s *Server) serveDeleteAccount(w http.ResponseWriter, r *http.Request) {
	user := s.pageUser(w, r)
	if user == nil {
		return
	}
	if !strings.EqualFold(strings.TrimSpace(r.PostForm.Get("confirm_email")), user.Email) {
		s.showAccount(w, r, user, http.StatusBadRequest, "", "Type your email exactly to confirm the deletion. Nothing was deleted.")
		return
	}
	if s.reauthenticate(w, r, user, r.PostForm.Get("password")) == "" {
		return
	}
	ctx := r.Context()
	if err := s.store.DeleteAccount(ctx, user.ID, s.now()); err != nil {
		s.busyOrInternal(w, r, err)
		return
	}
	if err := s.revoked.sync(ctx); err != nil {
		s.log.ErrorContext(ctx, "syncing revocations", "err", err)
	}
	s.log.InfoContext(ctx, "user deleted their account", "user", user.ID)
	http.SetCookie(w, s.cookies.expired("epicme_session"))
	s.showMessage(w, r, "Account deleted",
		"Your account and your whole journal are deleted, and no application can use them any more.", "", "")
}

// journalExport is the JSON form of an export.
type journalExport struct {
	Format     string          `json:"format"`
	ExportedAt time.Time       `json:"exportedAt"`
	User       exportUser      `json:"user"`
	Entries    []*epicme.Entry `json:"entries"`
	Tags       []*epicme.Tag   `json:"tags"`
}

type exportUser struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// serveExport sends the signed-in user's journal as a JSON or Markdown
// file. Every read is scoped to the user, as every journal query is.
func (s *Server) serveExport(w http.ResponseWriter, r *http.Request) {
	user := s.pageUser(w, r)
	if user == nil {
		return
	}
	if s.cfg.Journal == nil {
		s.showError(w, r, http.StatusNotFound, "Export is not available on this server.")
		return
	}
	format := r.PostForm.Get("format")
	if format != "json" && format != "markdown" {
		s.showAccount(w, r, user, http.StatusBadRequest, "", "Choose JSON or Markdown.")
		return
	}
	ctx := r.Context()
	x, err := s.exportJournal(ctx, user)
	if err != nil {
		s.busyOrInternal(w, r, err)
		return
	}
	var body []byte
	name := "epicme-journal-" + x.ExportedAt.Format("2006-01-02")
	ctype := "application/json"
	if format == "json" {
		body, err = json.MarshalIndent(x, "", "  ")
		if err != nil {
			s.busyOrInternal(w, r, err)
			return
		}
		name += ".json"
	} else {
		body = markdownExport(x)
		name += ".md"
		ctype = "text/markdown; charset=utf-8"
	}
	s.log.InfoContext(ctx, "user exported their journal", "user", user.ID, "format", format, "entries", len(x.Entries))
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Write(body)
}

func (s *Server) exportJournal(ctx context.Context, user *epicme.User) (*journalExport, error) {
	x := &journalExport{
		Format: "epicme-journal/1", ExportedAt: s.now().UTC(),
		User: exportUser{ID: user.ID, Email: user.Email}, Entries: []*epicme.Entry{}, Tags: []*epicme.Tag{},
	}
	f := epicme.EntryFilter{Limit: epicme.MaxPageSize}
	for {
		page, err := s.cfg.Journal.ListEntries(ctx, user.ID, f)
		if err != nil {
			return nil, err
		}
		for _, sum := range page.Entries {
			e, err := s.cfg.Journal.GetEntry(ctx, user.ID, sum.ID)
			if epicme.ErrorCode(err) == epicme.ENOTFOUND {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, err
			}
			x.Entries = append(x.Entries, e)
		}
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	refs, err := s.cfg.Journal.ListTags(ctx, user.ID)
	if err != nil {
		return nil, err
	}
	for _, ref := range refs {
		t, err := s.cfg.Journal.GetTag(ctx, user.ID, ref.ID)
		if epicme.ErrorCode(err) == epicme.ENOTFOUND {
			continue
		}
		if err != nil {
			return nil, err
		}
		x.Tags = append(x.Tags, t)
	}
	return x, nil
}

// markdownExport writes the journal as one Markdown document, newest entry
// first, each with its date, details and tags above its text.
func markdownExport(x *journalExport) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# EpicMe journal of %s\n\nExported %s: %d entries, %d tags.\n", x.User.Email, x.ExportedAt.Format(time.RFC3339), len(x.Entries), len(x.Tags))
	for _, e := range x.Entries {
		fmt.Fprintf(&b, "\n## %s\n\n", oneLine(e.Title))
		meta := []string{e.CreatedAt.UTC().Format("2 January 2006, 15:04 UTC")}
		for _, m := range []struct {
			label string
			v     *string
		}{{"mood", e.Mood}, {"location", e.Location}, {"weather", e.Weather}} {
			if m.v != nil && *m.v != "" {
				meta = append(meta, m.label+": "+oneLine(*m.v))
			}
		}
		if e.IsFavorite {
			meta = append(meta, "favorite")
		}
		fmt.Fprintf(&b, "*%s*\n", strings.Join(meta, " · "))
		if len(e.Tags) > 0 {
			var names []string
			for _, t := range e.Tags {
				names = append(names, oneLine(t.Name))
			}
			fmt.Fprintf(&b, "\nTags: %s\n", strings.Join(names, ", "))
		}
		fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(e.Content))
	}
	if len(x.Tags) > 0 {
		b.WriteString("\n## Tags\n\n")
		for _, t := range x.Tags {
			if t.Description != nil && *t.Description != "" {
				fmt.Fprintf(&b, "- **%s**: %s\n", oneLine(t.Name), oneLine(*t.Description))
			} else {
				fmt.Fprintf(&b, "- **%s**\n", oneLine(t.Name))
			}
		}
	}
	return b.Bytes()
}

// oneLine keeps a field on its line, so that it cannot start a heading of
// its own.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
