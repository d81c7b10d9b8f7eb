package mcpserver

import (
	"context"
	"fmt"
	"strconv"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/mcp"
)

// The arguments of the tag tools.
var (
	tagIDArg      = idParam("id", "The tag's id")
	newTagNameArg = textParam("name", "The tag's name", 1, epicme.MaxTagNameLen)
	newTagDescArg = optTextParam("description", "What the tag is for", 0, epicme.MaxTagDescLen, true)
	tagNameArg    = optTextParam("name", "", 1, epicme.MaxTagNameLen, false)
	tagDescArg    = clearableParam("description", "", epicme.MaxTagDescLen)
)

func (s *Server) addTagTools() {
	s.addTool(newTool("create_tag", "Create tag", "Create a tag. Tag names are unique per user.",
		inputs(newTagNameArg, newTagDescArg),
		object(js{"tag": tagSchema}, "tag"),
		annotations("Create tag", false, false, false)), s.createTag)

	s.addTool(newTool("get_tag", "Get tag", "Get a tag by id.",
		inputs(tagIDArg),
		object(js{"tag": tagSchema}, "tag"),
		readOnly("Get tag")), s.getTag)

	s.addTool(newTool("list_tags", "List tags", "List all tags, by name.",
		inputs(),
		object(js{"tags": tagRefsSchema}, "tags"),
		readOnly("List tags")), s.listTags)

	s.addTool(newTool("update_tag", "Update tag", "Rename a tag or change its description (null clears it).",
		inputs(tagIDArg, tagNameArg, tagDescArg),
		object(js{"tag": tagSchema}, "tag"),
		annotations("Update tag", false, true, true)), s.updateTag)

	s.addTool(newTool("delete_tag", "Delete tag", "Delete a tag and take it off every entry. The user is asked to confirm when the client can ask.",
		inputs(tagIDArg),
		object(js{"success": js{"type": "boolean"}, "tag": tagSchema}, "success", "tag"),
		annotations("Delete tag", false, true, true)), s.deleteTag)
}

// tagNotFound is the message of the reference implementation.
func tagNotFound(err error, id int64) error {
	if epicme.ErrorCode(err) == epicme.ENOTFOUND {
		return epicme.Errorf(epicme.ENOTFOUND, "Tag ID %q not found", strconv.FormatInt(id, 10))
	}
	return err
}

type tagOut struct {
	Tag *epicme.Tag `json:"tag"`
}

func (s *Server) createTag(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error) {
	var err error
	var in epicme.NewTag
	if in.Name, err = newTagNameArg.get(a); err != nil {
		return nil, err
	}
	if in.Description, err = newTagDescArg.get(a); err != nil {
		return nil, err
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	t, err := s.store.CreateTag(ctx, c.User.ID, in)
	if err != nil {
		return nil, err
	}
	s.notifyUpdated(c.User.ID, uriTags)
	return toolResult(tagOut{t}, fmt.Sprintf("Tag %q created successfully with ID %q", t.Name, strconv.FormatInt(t.ID, 10)), tagLink(t.ID, t.Name))
}

func (s *Server) getTag(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error) {
	id, err := tagIDArg.get(a)
	if err != nil {
		return nil, err
	}
	t, err := s.store.GetTag(ctx, c.User.ID, id)
	if err != nil {
		return nil, tagNotFound(err, id)
	}
	return toolResult(tagOut{t}, "", tagLink(t.ID, t.Name))
}

func (s *Server) listTags(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error) {
	tags, err := s.store.ListTags(ctx, c.User.ID)
	if err != nil {
		return nil, err
	}
	if tags == nil {
		tags = []epicme.TagRef{}
	}
	links := make([]mcp.Content, 0, len(tags))
	for _, t := range tags {
		links = append(links, tagLink(t.ID, t.Name))
	}
	return toolResult(struct {
		Tags []epicme.TagRef `json:"tags"`
	}{tags}, fmt.Sprintf("Found %d tags.", len(tags)), links...)
}

func (s *Server) updateTag(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error) {
	id, err := tagIDArg.get(a)
	if err != nil {
		return nil, err
	}
	var u epicme.TagUpdate
	if u.Name, err = tagNameArg.get(a); err != nil {
		return nil, err
	}
	if u.Description, err = tagDescArg.get(a); err != nil {
		return nil, err
	}
	if u.Name == nil && u.Description == nil {
		return nil, epicme.Invalid("id", "give at least one field to change: name or description")
	}
	if err := u.Validate(); err != nil {
		return nil, err
	}
	t, err := s.store.UpdateTag(ctx, c.User.ID, id, u)
	if err != nil {
		return nil, tagNotFound(err, id)
	}
	s.notifyUpdated(c.User.ID, tagURI(id), uriTags)
	return toolResult(tagOut{t}, fmt.Sprintf("Tag %q (ID: %d) updated successfully", t.Name, t.ID), tagLink(t.ID, t.Name))
}

func (s *Server) deleteTag(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error) {
	id, err := tagIDArg.get(a)
	if err != nil {
		return nil, err
	}
	t, err := s.store.GetTag(ctx, c.User.ID, id)
	if err != nil {
		return nil, tagNotFound(err, id)
	}
	what := fmt.Sprintf("tag %q (ID: %d)", t.Name, t.ID)
	confirmed, ask, err := s.confirm(ctx, c, req, "delete_tag", id,
		fmt.Sprintf("Are you sure you want to delete %s? It will be removed from every entry.", what))
	if err != nil || ask != nil {
		return ask, err
	}
	if !confirmed {
		return toolResult(struct {
			Success bool        `json:"success"`
			Tag     *epicme.Tag `json:"tag"`
		}{false, t}, fmt.Sprintf("Deleting %s rejected by the user.", what))
	}
	deleted, err := s.store.DeleteTag(ctx, c.User.ID, id)
	if err != nil {
		return nil, tagNotFound(err, id)
	}
	s.notifyUpdated(c.User.ID, tagURI(id), uriTags)
	return toolResult(struct {
		Success bool        `json:"success"`
		Tag     *epicme.Tag `json:"tag"`
	}{true, deleted}, fmt.Sprintf("Tag %q (ID: %d) deleted successfully", deleted.Name, deleted.ID))
}

func (s *Server) addTagToEntry(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error) {
	e, t, err := s.entryAndTag(ctx, c, a)
	if err != nil {
		return nil, err
	}
	et, err := s.store.AddTagToEntry(ctx, c.User.ID, e.ID, t.ID)
	if err != nil {
		return nil, err
	}
	s.notifyUpdated(c.User.ID, entryURI(e.ID))
	return toolResult(struct {
		Success  bool             `json:"success"`
		EntryTag *epicme.EntryTag `json:"entryTag"`
	}{true, et}, fmt.Sprintf("Tag %q (ID: %d) added to entry %q (ID: %d) successfully", t.Name, t.ID, e.Title, e.ID),
		entryLink(e.ID, e.Title), tagLink(t.ID, t.Name))
}

func (s *Server) removeTagFromEntry(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error) {
	e, t, err := s.entryAndTag(ctx, c, a)
	if err != nil {
		return nil, err
	}
	removed, err := s.store.RemoveTagFromEntry(ctx, c.User.ID, e.ID, t.ID)
	if err != nil {
		return nil, err
	}
	sentence := fmt.Sprintf("Tag %q (ID: %d) removed from entry %q (ID: %d) successfully", t.Name, t.ID, e.Title, e.ID)
	if removed {
		s.notifyUpdated(c.User.ID, entryURI(e.ID))
	} else {
		sentence = fmt.Sprintf("Entry %q (ID: %d) did not have tag %q (ID: %d); nothing changed", e.Title, e.ID, t.Name, t.ID)
	}
	return toolResult(struct {
		Success bool `json:"success"`
		Removed bool `json:"removed"`
	}{true, removed}, sentence, entryLink(e.ID, e.Title), tagLink(t.ID, t.Name))
}

// entryAndTag reads the entryId and tagId arguments and loads both rows, so
// that a missing one is named in the error.
func (s *Server) entryAndTag(ctx context.Context, c *epicme.Caller, a args) (*epicme.Entry, *epicme.Tag, error) {
	entryID, err := linkEntryArg.get(a)
	if err != nil {
		return nil, nil, err
	}
	tagID, err := linkTagArg.get(a)
	if err != nil {
		return nil, nil, err
	}
	e, err := s.store.GetEntry(ctx, c.User.ID, entryID)
	if err != nil {
		return nil, nil, entryNotFound(err, entryID)
	}
	t, err := s.store.GetTag(ctx, c.User.ID, tagID)
	if err != nil {
		return nil, nil, tagNotFound(err, tagID)
	}
	return e, t, nil
}
