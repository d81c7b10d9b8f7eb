package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Tag suggestion by sampling (MCP client/sampling): after create_entry, the
// client's model is asked which tags fit the new entry.

const (
	maxSuggestions      = 5
	suggestionMaxTokens = 300
	// suggestionContent bounds how much of the entry's text the model sees.
	suggestionContent = 4000
)

const suggestionSystemPrompt = `You suggest tags for journal entries.
Reply with JSON only: no prose, no code fences.
The reply is an array of at most 5 items. Each item is either {"id": <number>} to reuse one of the user's existing tags, or {"name": "<new tag name>", "description": "<one short sentence>"} for a new tag.
Prefer existing tags. Do not suggest a tag the entry already has. Reply [] when nothing fits.`

// suggestionRequest builds the sampling request for entry e: the entry with
// its tags, and every tag the user has.
func (s *Server) suggestionRequest(ctx context.Context, userID string, e *epicme.Entry) (mcp.CreateMessageParams, error) {
	tags, err := s.store.ListTags(ctx, userID)
	if err != nil {
		return mcp.CreateMessageParams{}, err
	}
	if tags == nil {
		tags = []epicme.TagRef{}
	}
	content := e.Content
	if len(content) > suggestionContent {
		cut := suggestionContent
		for cut > 0 && !utf8.RuneStart(content[cut]) {
			cut--
		}
		content = content[:cut] + "…"
	}
	entryTags := e.Tags
	if entryTags == nil {
		entryTags = []epicme.TagRef{}
	}
	payload, err := json.Marshal(struct {
		Entry any             `json:"entry"`
		Tags  []epicme.TagRef `json:"existingTags"`
	}{
		Entry: struct {
			ID       int64           `json:"id"`
			Title    string          `json:"title"`
			Content  string          `json:"content"`
			Mood     *string         `json:"mood,omitempty"`
			Location *string         `json:"location,omitempty"`
			Weather  *string         `json:"weather,omitempty"`
			Tags     []epicme.TagRef `json:"tags"`
		}{e.ID, e.Title, content, e.Mood, e.Location, e.Weather, entryTags},
		Tags: tags,
	})
	if err != nil {
		return mcp.CreateMessageParams{}, epicme.Internal(err)
	}
	return mcp.CreateMessageParams{
		SystemPrompt: suggestionSystemPrompt,
		Messages: []mcp.SamplingMessage{{
			Role:    mcp.RoleUser,
			Content: mcp.NewTextContent("Suggest tags for this journal entry:\n" + string(payload)),
		}},
		MaxTokens:      suggestionMaxTokens,
		IncludeContext: "none",
	}, nil
}

// samplingText returns the text of a sampling answer.
func samplingText(r *mcp.CreateMessageResult) string {
	switch c := r.Content.(type) {
	case mcp.TextContent:
		return c.Text
	case *mcp.TextContent:
		return c.Text
	case map[string]any:
		t, _ := c["text"].(string)
		return t
	}
	return ""
}

// suggestion is one item of the model's answer.
type suggestion struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	Description *string `json:"description"`
}

// applySuggestions links the suggested tags to the entry, creating the new
// ones, and returns the tags it added. The answer is untrusted model output:
// it is parsed strictly, capped at maxSuggestions, and every tag goes
// through the same validation and per-user scoping as a tool call.
func (s *Server) applySuggestions(ctx context.Context, userID string, entryID int64, text string) ([]epicme.TagRef, error) {
	text = strings.TrimSpace(text)
	start, end := strings.IndexByte(text, '['), strings.LastIndexByte(text, ']')
	if start < 0 || end < start {
		return nil, epicme.Invalid("suggestions", "the model's answer holds no JSON array")
	}
	var items []suggestion
	if err := json.Unmarshal([]byte(text[start:end+1]), &items); err != nil {
		return nil, epicme.Invalid("suggestions", "the model's answer is not a JSON array of tags: %v", err)
	}
	if len(items) > maxSuggestions {
		items = items[:maxSuggestions]
	}
	entry, err := s.store.GetEntry(ctx, userID, entryID)
	if err != nil {
		return nil, err
	}
	has := map[int64]bool{}
	for _, t := range entry.Tags {
		has[t.ID] = true
	}
	existing, err := s.store.ListTags(ctx, userID)
	if err != nil {
		return nil, err
	}
	byName := func(name string) (epicme.TagRef, bool) {
		for _, t := range existing {
			if strings.EqualFold(t.Name, name) {
				return t, true
			}
		}
		return epicme.TagRef{}, false
	}

	var added []epicme.TagRef
	var errs []error
	for _, it := range items {
		var ref epicme.TagRef
		switch {
		case it.ID > 0:
			t, err := s.store.GetTag(ctx, userID, it.ID)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ref = epicme.TagRef{ID: t.ID, Name: t.Name}
		case strings.TrimSpace(it.Name) != "":
			if t, ok := byName(strings.TrimSpace(it.Name)); ok {
				ref = t
				break
			}
			in := epicme.NewTag{Name: it.Name, Description: it.Description}
			if err := in.Validate(); err != nil {
				errs = append(errs, err)
				continue
			}
			t, err := s.store.CreateTag(ctx, userID, in)
			if epicme.ErrorCode(err) == epicme.ECONFLICT {
				// Another suggestion (for another entry) created it
				// meanwhile: use that one.
				if existing, err = s.store.ListTags(ctx, userID); err != nil {
					errs = append(errs, err)
					continue
				}
				if found, ok := byName(strings.TrimSpace(it.Name)); ok {
					ref = found
					break
				}
				errs = append(errs, epicme.Errorf(epicme.ECONFLICT, "tag %q exists under another name", it.Name))
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ref = epicme.TagRef{ID: t.ID, Name: t.Name}
			existing = append(existing, ref)
		default:
			continue
		}
		if has[ref.ID] {
			continue
		}
		if _, err := s.store.AddTagToEntry(ctx, userID, entryID, ref.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		has[ref.ID] = true
		added = append(added, ref)
	}
	if len(added) > 0 {
		s.notifyUpdated(userID, entryURI(entryID), uriTags)
	}
	return added, errors.Join(errs...)
}

// askSuggestions asks for tag suggestions after create_entry on a session of
// protocol 2025-03-26..2025-11-25. The sampling request goes out on the
// session's GET stream: from here when this instance holds it, else from
// the instance that does, told through Peers. A client opens that stream
// after initialize on its own schedule, and a create_entry can overtake
// it, so an instance waits for the stream briefly (waitForStream).
func (s *Server) askSuggestions(ctx context.Context, userID string, e *epicme.Entry) {
	session := server.ClientSessionFromContext(ctx)
	if session == nil || session.SessionID() == "" {
		s.suggestInBackground(ctx, userID, e)
		return
	}
	key := epicme.SessionKey(session.SessionID())
	id, _, _, streams := s.sessions.localState(key)
	if id == "" && s.opts.Peers == nil {
		// Not an HTTP session (stdio): the request's own session object is
		// the one its transport reads.
		s.suggestInBackground(ctx, userID, e)
		return
	}
	shared := !streams && s.opts.Peers != nil
	if shared {
		_ = s.publish(ctx, peerMessage{Kind: kindSuggest, Key: key, UserID: userID, EntryID: e.ID})
	}
	go s.suggestOnStream(key, userID, e, shared)
}

// suggestPassedOn asks, if the session's GET stream opens here, for the
// suggestions of an entry another instance created (kindSuggest).
func (s *Server) suggestPassedOn(key, userID string, entryID int64) {
	if s.waitForStream(key) == nil || !s.claimSuggestion(key, entryID) {
		return
	}
	e, err := s.store.GetEntry(context.Background(), userID, entryID)
	if err != nil {
		s.logger.Info("tag suggestion skipped", "entry", entryID, "err", err)
		return
	}
	s.suggestOnStream(key, userID, e, false)
}

// claimSuggestion reports whether this instance is the one to ask the
// suggestions of an entry that every instance may ask (the one whose GET
// stream it waited for may reopen elsewhere): the first to record it in
// the session store.
func (s *Server) claimSuggestion(key string, entryID int64) bool {
	claim := "suggest:" + key + ":" + strconv.FormatInt(entryID, 10)
	err := s.sessionStore.UseRequestState(context.Background(), claim, time.Now().Add(time.Minute))
	if err != nil && epicme.ErrorCode(err) != epicme.ECONFLICT {
		s.logger.Info("tag suggestion skipped", "entry", entryID, "err", err)
	}
	return err == nil
}

// streamRegistrationWait bounds how long waitForStream waits for a GET
// stream to open here and register with mcp-go.
const streamRegistrationWait = 2 * time.Second

// waitForStream returns the session object a GET stream of session key
// registered with mcp-go here, waiting for it up to
// streamRegistrationWait; nil if none did.
func (s *Server) waitForStream(key string) server.ClientSession {
	deadline := time.Now().Add(streamRegistrationWait)
	for {
		_, registered, _, streams := s.sessions.localState(key)
		if streams && registered != nil {
			return registered
		}
		if time.Now().After(deadline) {
			if streams {
				s.logger.Info("tag suggestion skipped: the session's stream did not register", "key", key)
			}
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// suggestOnStream asks for tag suggestions on the session's GET stream held
// here, through the session object that stream registered with mcp-go,
// never through the one of the request that created the entry: a request
// that arrived before the stream registered gets an ephemeral object of
// its own, and a server request queued on it is read by no one. When claim
// is set, other instances may ask too, and only the claimant does.
func (s *Server) suggestOnStream(key, userID string, e *epicme.Entry, claim bool) {
	registered := s.waitForStream(key)
	if registered == nil || claim && !s.claimSuggestion(key, e.ID) {
		return
	}
	s.suggestInBackground(s.mcp.WithContext(context.Background(), registered), userID, e)
}

// suggestInBackground asks for tag suggestions on a session of protocol
// 2025-03-26..2025-11-25 after the tool result has gone out, so a slow or
// absent model never holds up create_entry. It runs with the session of the
// request (for the sampling request and the log notification) and nothing
// else of it, bounded by Options.SamplingTimeout: mcp-go sends a server
// request on the response stream of the POST whose context it is given
// while that stream is open, and the create_entry response may be closing
// by then, taking the request with it; from a fresh context the request
// always goes out on the session's GET stream.
func (s *Server) suggestInBackground(ctx context.Context, userID string, e *epicme.Entry) {
	select {
	case s.background <- struct{}{}:
	default:
		s.logger.WarnContext(ctx, "tag suggestion skipped: too many in flight", "entry", e.ID)
		return
	}
	ctx = s.mcp.WithContext(context.Background(), server.ClientSessionFromContext(ctx))
	go func() {
		defer func() { <-s.background }()
		defer func() {
			if r := recover(); r != nil {
				s.logger.Error("tag suggestion panicked", slog.Any("panic", r))
			}
		}()
		ctx, cancel := context.WithTimeout(ctx, s.opts.SamplingTimeout)
		defer cancel()
		params, err := s.suggestionRequest(ctx, userID, e)
		if err != nil {
			s.logger.WarnContext(ctx, "tag suggestion failed", "entry", e.ID, "err", err)
			return
		}
		res, err := s.mcp.RequestSampling(ctx, mcp.CreateMessageRequest{CreateMessageParams: params})
		if err != nil {
			s.logger.InfoContext(ctx, "tag suggestion: client did not answer", "entry", e.ID, "err", err)
			return
		}
		added, err := s.applySuggestions(ctx, userID, e.ID, samplingText(res))
		if err != nil {
			s.logger.WarnContext(ctx, "tag suggestions not all applied", "entry", e.ID, "err", err)
		}
		if len(added) > 0 {
			s.logAdded(ctx, e, added)
		}
	}()
}

// logAdded tells the client, by a logging notification (MCP
// server/utilities/logging), which tags were added to an entry.
func (s *Server) logAdded(ctx context.Context, e *epicme.Entry, added []epicme.TagRef) {
	ids := make([]int64, len(added))
	for i, t := range added {
		ids[i] = t.ID
	}
	n := mcp.NewLoggingMessageNotification(mcp.LoggingLevelInfo, "epicme", map[string]any{
		"message": fmt.Sprintf("Added tags to entry %q (ID: %d): %s", e.Title, e.ID, tagNames(added)),
		"entryId": e.ID,
		"tagIds":  ids,
	})
	if err := s.mcp.SendLogMessageToClient(ctx, n); err != nil && !errors.Is(err, server.ErrNotificationNotInitialized) {
		s.logger.InfoContext(ctx, "log notification not sent", "err", err)
	}
}

func tagNames(tags []epicme.TagRef) string {
	names := make([]string, len(tags))
	for i, t := range tags {
		names[i] = fmt.Sprintf("%q", t.Name)
	}
	return strings.Join(names, ", ")
}
