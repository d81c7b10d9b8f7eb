package mcpserver

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Keys of the input requests EpicMe asks for in multi round-trip requests.
const (
	inputConfirm     = "confirm"
	inputSuggestTags = "suggest_tags"
)

// The arguments of the entry tools. Those of create_entry are required
// (title, content) or nil when null (mood, location, weather); those of
// update_entry may be left out, and null clears mood, location or weather.
var (
	entryIDArg   = idParam("id", "The entry's id")
	linkEntryArg = idParam("entryId", "The entry's id")
	linkTagArg   = idParam("tagId", "The tag's id")

	newTitleArg    = textParam("title", titleDesc, 1, epicme.MaxTitleLen)
	newContentArg  = textParam("content", contentDesc, 1, 0)
	newMoodArg     = optTextParam("mood", moodDesc, 0, epicme.MaxMetaLen, true)
	newLocationArg = optTextParam("location", locationDesc, 0, epicme.MaxMetaLen, true)
	newWeatherArg  = optTextParam("weather", weatherDesc, 0, epicme.MaxMetaLen, true)
	newPrivateArg  = flagParam("isPrivate", "Whether the entry is private (default true)")
	newFavoriteArg = flagParam("isFavorite", "Whether the entry is a favorite (default false)")
	newTagsArg     = idsParam("tags", "Ids of existing tags to put on the entry", epicme.MaxTagsPerRequest)

	titleArg    = optTextParam("title", titleDesc, 1, epicme.MaxTitleLen, false)
	contentArg  = optTextParam("content", contentDesc, 1, 0, false)
	moodArg     = clearableParam("mood", moodDesc, epicme.MaxMetaLen)
	locationArg = clearableParam("location", locationDesc, epicme.MaxMetaLen)
	weatherArg  = clearableParam("weather", weatherDesc, epicme.MaxMetaLen)
	privateArg  = flagParam("isPrivate", "Whether the entry is private (true/false, or 1/0)")
	favoriteArg = flagParam("isFavorite", "Whether the entry is a favorite (true/false, or 1/0)")

	tagIDsArg        = idsParam("tagIds", "Keep entries that have every one of these tags", epicme.MaxTagsPerRequest)
	fromArg          = timeParam("from", "Keep entries created at or after this RFC 3339 date or date-time")
	toArg            = timeParam("to", "Keep entries created before this RFC 3339 date or date-time")
	favoritesOnlyArg = flagParam("favoritesOnly", "Keep favorite entries only")
	queryArg         = textParam("query", "Words to look for", 1, epicme.MaxSearchQueryLen)
)

// Descriptions of the entry fields create_entry and update_entry share.
const (
	titleDesc    = "The entry's title"
	moodDesc     = "How the writer felt (e.g. happy, reflective)"
	locationDesc = "Where it happened"
	weatherDesc  = "The weather"
)

var contentDesc = fmt.Sprintf("The entry's text (at most %d KB)", epicme.MaxContentBytes/1024)

func (s *Server) addTools() {
	s.addTool(newTool("whoami", "Who am I", "Show the signed-in user and the scopes this client was granted.",
		inputs(),
		object(js{"user": userSchema, "scopes": js{"type": "array", "items": js{"type": "string"}}}, "user", "scopes"),
		readOnly("Who am I")), s.whoami)

	s.addTool(newTool("create_entry", "Create entry", "Create a journal entry.",
		inputs(newTitleArg, newContentArg, newMoodArg, newLocationArg, newWeatherArg, newPrivateArg, newFavoriteArg, newTagsArg),
		object(js{"entry": entrySchema}, "entry"),
		annotations("Create entry", false, false, false)), s.createEntry)

	s.addTool(newTool("get_entry", "Get entry", "Get a journal entry by id, with its tags.",
		inputs(entryIDArg),
		object(js{"entry": entrySchema}, "entry"),
		readOnly("Get entry")), s.getEntry)

	s.addTool(newTool("list_entries", "List entries", "List journal entries, newest first. Filter by tags, creation date and favorites; page with limit and cursor.",
		inputs(tagIDsArg, fromArg, toArg, favoritesOnlyArg, limitArg, cursorArg),
		object(js{"entries": js{"type": "array", "items": entrySummarySchema}, "nextCursor": js{"type": "string"}}, "entries"),
		readOnly("List entries")), s.listEntries)

	s.addTool(newTool("search_entries", "Search entries", "Search the text of journal entries. Every word must appear in the title or content.",
		inputs(queryArg, limitArg, cursorArg),
		object(js{"results": js{"type": "array", "items": searchHitSchema}, "nextCursor": js{"type": "string"}}, "results"),
		readOnly("Search entries")), s.searchEntries)

	s.addTool(newTool("update_entry", "Update entry", "Change fields of a journal entry. Fields left out stay as they are; null clears mood, location or weather.",
		inputs(entryIDArg, titleArg, contentArg, moodArg, locationArg, weatherArg, privateArg, favoriteArg),
		object(js{"entry": entrySchema}, "entry"),
		annotations("Update entry", false, true, true)), s.updateEntry)

	s.addTool(newTool("delete_entry", "Delete entry", "Delete a journal entry. The user is asked to confirm when the client can ask.",
		inputs(entryIDArg),
		object(js{"success": js{"type": "boolean"}, "entry": entrySchema}, "success", "entry"),
		annotations("Delete entry", false, true, true)), s.deleteEntry)

	s.addTool(newTool("add_tag_to_entry", "Add tag to entry", "Put a tag on an entry. Adding a tag the entry already has changes nothing.",
		inputs(linkEntryArg, linkTagArg),
		object(js{"success": js{"type": "boolean"}, "entryTag": entryTagSchema}, "success", "entryTag"),
		annotations("Add tag to entry", false, false, true)), s.addTagToEntry)

	s.addTool(newTool("remove_tag_from_entry", "Remove tag from entry", "Take a tag off an entry.",
		inputs(linkEntryArg, linkTagArg),
		object(js{"success": js{"type": "boolean"}, "removed": js{"type": "boolean"}}, "success", "removed"),
		annotations("Remove tag from entry", false, true, true)), s.removeTagFromEntry)

	s.addTagTools()
}

func (s *Server) whoami(_ context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error) {
	scopes := c.Scopes
	if scopes == nil {
		scopes = epicme.Scopes{}
	}
	return toolResult(struct {
		User   *epicme.User  `json:"user"`
		Scopes epicme.Scopes `json:"scopes"`
	}{c.User, scopes}, "")
}

// entryNotFound is the message of the reference implementation.
func entryNotFound(err error, id int64) error {
	if epicme.ErrorCode(err) == epicme.ENOTFOUND {
		return epicme.Errorf(epicme.ENOTFOUND, "Entry with ID %q not found", strconv.FormatInt(id, 10))
	}
	return err
}

type entryOut struct {
	Entry *epicme.Entry `json:"entry"`
}

func (s *Server) getEntry(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error) {
	id, err := entryIDArg.get(a)
	if err != nil {
		return nil, err
	}
	e, err := s.store.GetEntry(ctx, c.User.ID, id)
	if err != nil {
		return nil, entryNotFound(err, id)
	}
	return toolResult(entryOut{e}, "", entryLink(e.ID, e.Title))
}

func (s *Server) createEntry(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error) {
	var err error
	if req.Params.RequestState != "" || len(req.Params.InputResponses) > 0 {
		return s.finishCreateEntry(ctx, c, req)
	}
	var in epicme.NewEntry
	if in.Title, err = newTitleArg.get(a); err != nil {
		return nil, err
	}
	if in.Content, err = newContentArg.get(a); err != nil {
		return nil, err
	}
	if in.Mood, err = newMoodArg.get(a); err != nil {
		return nil, err
	}
	if in.Location, err = newLocationArg.get(a); err != nil {
		return nil, err
	}
	if in.Weather, err = newWeatherArg.get(a); err != nil {
		return nil, err
	}
	in.IsPrivate = true
	if b, err := newPrivateArg.get(a); err != nil {
		return nil, err
	} else if b != nil {
		in.IsPrivate = *b
	}
	if b, err := newFavoriteArg.get(a); err != nil {
		return nil, err
	} else if b != nil {
		in.IsFavorite = *b
	}
	if in.TagIDs, err = newTagsArg.get(a); err != nil {
		return nil, err
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	e, err := s.store.CreateEntry(ctx, c.User.ID, in)
	if err != nil {
		return nil, err
	}
	if len(in.TagIDs) > 0 && e.Tags == nil {
		if full, err := s.store.GetEntry(ctx, c.User.ID, e.ID); err == nil {
			e = full
		}
	}

	if c.Scopes.Has(samplingScopes...) && clientCaps(ctx).Sampling != nil {
		if server.IsModernRequest(ctx) {
			// Ask for suggestions in a second round; the entry exists
			// already, and the state names it so the retry never creates
			// another.
			params, err := s.suggestionRequest(ctx, c.User.ID, e)
			if err != nil {
				return nil, err
			}
			state := s.sealState(roundTrip{UserID: c.User.ID, ClientID: c.ClientID, Tool: "create_entry", Args: argsHash(req.Params.Arguments), Target: e.ID, Expires: time.Now().Add(stateTTL).Unix()})
			return server.NewInputRequestBuilder(state).Sample(inputSuggestTags, params).ToolResult(), nil
		}
		s.askSuggestions(ctx, c.User.ID, e)
	}
	return createdEntry(e, nil)
}

func createdEntry(e *epicme.Entry, added []epicme.TagRef) (*mcp.CallToolResult, error) {
	sentence := fmt.Sprintf("Entry %q created successfully with ID %q", e.Title, strconv.FormatInt(e.ID, 10))
	if len(added) > 0 {
		sentence += ". Suggested tags added: " + tagNames(added)
	}
	return toolResult(entryOut{e}, sentence, entryLink(e.ID, e.Title))
}

// finishCreateEntry is the second round of create_entry on protocol
// 2026-07-28: the entry was created on the first round; link the tags the
// client's model suggested and answer with the entry.
func (s *Server) finishCreateEntry(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	rt, err := s.openState(req.Params.RequestState, c, "create_entry", req.Params.Arguments, time.Now())
	if err != nil {
		return nil, err
	}
	// This round links and shows tags: the token that continues the round
	// trip needs the scopes that asking for suggestions needed, whatever
	// the token that began it had.
	if !c.Scopes.Has(samplingScopes...) {
		return nil, forbidden("adding suggested tags", c.Scopes.Missing(samplingScopes...))
	}
	if err := s.useState(ctx, req.Params.RequestState, rt, "create_entry"); err != nil {
		return nil, err
	}
	var added []epicme.TagRef
	if answer := server.SamplingResponse(req.Params.InputResponses, inputSuggestTags); answer != nil {
		added, err = s.applySuggestions(ctx, c.User.ID, rt.Target, samplingText(answer))
		if err != nil {
			s.logger.WarnContext(ctx, "tag suggestions not applied", "entry", rt.Target, "err", err)
		}
	}
	e, err := s.store.GetEntry(ctx, c.User.ID, rt.Target)
	if err != nil {
		return nil, entryNotFound(err, rt.Target)
	}
	if len(added) > 0 {
		s.logAdded(ctx, e, added)
	}
	return createdEntry(e, added)
}

func (s *Server) listEntries(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error) {
	var err error
	var f epicme.EntryFilter
	if f.TagIDs, err = tagIDsArg.get(a); err != nil {
		return nil, err
	}
	if f.From, err = fromArg.get(a); err != nil {
		return nil, err
	}
	if f.To, err = toArg.get(a); err != nil {
		return nil, err
	}
	if b, err := favoritesOnlyArg.get(a); err != nil {
		return nil, err
	} else if b != nil {
		f.FavoritesOnly = *b
	}
	if f.Limit, f.Cursor, err = a.page(); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	page, err := s.store.ListEntries(ctx, c.User.ID, f)
	if err != nil {
		return nil, err
	}
	if page.Entries == nil {
		page.Entries = []epicme.EntrySummary{}
	}
	links := make([]mcp.Content, 0, len(page.Entries))
	for _, e := range page.Entries {
		links = append(links, entryLink(e.ID, e.Title))
	}
	return toolResult(pageOut{page}, fmt.Sprintf("Found %d entries.", len(page.Entries)), links...)
}

func (s *Server) searchEntries(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error) {
	var err error
	var q epicme.SearchQuery
	if q.Text, err = queryArg.get(a); err != nil {
		return nil, err
	}
	if q.Limit, q.Cursor, err = a.page(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	page, err := s.store.SearchEntries(ctx, c.User.ID, q)
	if err != nil {
		return nil, err
	}
	if page.Results == nil {
		page.Results = []epicme.SearchHit{}
	}
	links := make([]mcp.Content, 0, len(page.Results))
	for _, h := range page.Results {
		links = append(links, entryLink(h.ID, h.Title))
	}
	return toolResult(page, fmt.Sprintf("Found %d entries matching %q.", len(page.Results), q.Text), links...)
}

func (s *Server) updateEntry(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error) {
	id, err := entryIDArg.get(a)
	if err != nil {
		return nil, err
	}
	var u epicme.EntryUpdate
	if u.Title, err = titleArg.get(a); err != nil {
		return nil, err
	}
	if u.Content, err = contentArg.get(a); err != nil {
		return nil, err
	}
	if u.Mood, err = moodArg.get(a); err != nil {
		return nil, err
	}
	if u.Location, err = locationArg.get(a); err != nil {
		return nil, err
	}
	if u.Weather, err = weatherArg.get(a); err != nil {
		return nil, err
	}
	if u.IsPrivate, err = privateArg.get(a); err != nil {
		return nil, err
	}
	if u.IsFavorite, err = favoriteArg.get(a); err != nil {
		return nil, err
	}
	if u.Empty() {
		return nil, epicme.Invalid("id", "give at least one field to change: title, content, mood, location, weather, isPrivate or isFavorite")
	}
	if err := u.Validate(); err != nil {
		return nil, err
	}
	e, err := s.store.UpdateEntry(ctx, c.User.ID, id, u)
	if err != nil {
		return nil, entryNotFound(err, id)
	}
	s.notifyUpdated(c.User.ID, entryURI(id))
	return toolResult(entryOut{e}, fmt.Sprintf("Entry %q (ID: %d) updated successfully", e.Title, e.ID), entryLink(e.ID, e.Title))
}

func (s *Server) deleteEntry(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error) {
	id, err := entryIDArg.get(a)
	if err != nil {
		return nil, err
	}
	e, err := s.store.GetEntry(ctx, c.User.ID, id)
	if err != nil {
		return nil, entryNotFound(err, id)
	}
	what := fmt.Sprintf("entry %q (ID: %d)", e.Title, e.ID)
	confirmed, ask, err := s.confirm(ctx, c, req, "delete_entry", id,
		fmt.Sprintf("Are you sure you want to delete %s?", what))
	if err != nil || ask != nil {
		return ask, err
	}
	if !confirmed {
		return toolResult(struct {
			Success bool          `json:"success"`
			Entry   *epicme.Entry `json:"entry"`
		}{false, e}, fmt.Sprintf("Deleting %s rejected by the user.", what))
	}
	deleted, err := s.store.DeleteEntry(ctx, c.User.ID, id)
	if err != nil {
		return nil, entryNotFound(err, id)
	}
	s.notifyUpdated(c.User.ID, entryURI(id))
	return toolResult(struct {
		Success bool          `json:"success"`
		Entry   *epicme.Entry `json:"entry"`
	}{true, deleted}, fmt.Sprintf("Entry %q (ID: %d) deleted successfully", deleted.Title, deleted.ID))
}

// confirm asks the user to confirm a destructive call by elicitation (MCP
// 2025-06-18 and later, client/elicitation) when the client supports it.
//
// On the first round it returns ask, an input_required result whose signed
// requestState names the tool, the arguments and the target row. On the
// retry it checks that state (a client cannot skip the question by sending
// an answer of its own making) and reports whether the user accepted and
// ticked "confirmed". A client without elicitation is not asked.
func (s *Server) confirm(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, tool string, target int64, question string) (confirmed bool, ask *mcp.CallToolResult, err error) {
	if req.Params.RequestState != "" || len(req.Params.InputResponses) > 0 {
		rt, err := s.openState(req.Params.RequestState, c, tool, req.Params.Arguments, time.Now())
		if err != nil {
			return false, nil, err
		}
		if rt.Target != target {
			return false, nil, epicme.Invalid("requestState", "requestState is invalid or expired; call %s again without it", tool)
		}
		answer := server.ElicitationResponse(req.Params.InputResponses, inputConfirm)
		if answer == nil {
			return false, nil, epicme.Invalid("inputResponses", "the answer to %q is missing from inputResponses", inputConfirm)
		}
		if err := s.useState(ctx, req.Params.RequestState, rt, tool); err != nil {
			return false, nil, err
		}
		if answer.Action != mcp.ElicitationResponseActionAccept {
			return false, nil, nil
		}
		content, _ := answer.Content.(map[string]any)
		ok, _ := content["confirmed"].(bool)
		return ok, nil, nil
	}
	if clientCaps(ctx).Elicitation == nil {
		return true, nil, nil
	}
	state := s.sealState(roundTrip{UserID: c.User.ID, ClientID: c.ClientID, Tool: tool, Args: argsHash(req.Params.Arguments), Target: target, Expires: time.Now().Add(stateTTL).Unix()})
	return false, server.NewInputRequestBuilder(state).Elicit(inputConfirm, mcp.ElicitationParams{
		Mode:    mcp.ElicitationModeForm,
		Message: question,
		RequestedSchema: js{
			"type": "object",
			"properties": js{
				"confirmed": js{"type": "boolean", "title": "Confirm", "description": "Tick to confirm"},
			},
			"required": []string{"confirmed"},
		},
	}).ToolResult(), nil
}
