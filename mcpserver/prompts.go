package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/mcp"
)

func (s *Server) addPrompts() {
	s.mcp.AddPrompt(mcp.NewPrompt("suggest_tags",
		mcp.WithPromptTitle("Suggest tags"),
		mcp.WithPromptDescription("Suggest tags for a journal entry, and add them with create_tag and add_tag_to_entry"),
		mcp.WithArgument("entryId",
			mcp.ArgumentDescription("The id of the entry to suggest tags for"),
			mcp.RequiredArgument()),
	), s.suggestTags)
}

// suggestTags serves the suggest_tags prompt (MCP server/prompts): a user
// message asking for tags, with the user's tags and the entry embedded as
// resources.
func (s *Server) suggestTags(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	c, err := s.caller(ctx)
	if err != nil {
		return nil, s.paramsErr(ctx, "suggest_tags", err)
	}
	raw, ok := req.Params.Arguments["entryId"]
	if !ok || strings.TrimSpace(raw) == "" {
		return nil, s.paramsErr(ctx, "suggest_tags", epicme.Invalid("entryId", "entryId is required (a positive integer)"))
	}
	id, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil || id < 1 {
		return nil, s.paramsErr(ctx, "suggest_tags", epicme.Invalid("entryId", "entryId must be a positive integer"))
	}
	e, err := s.store.GetEntry(ctx, c.User.ID, id)
	if err != nil {
		return nil, s.paramsErr(ctx, "suggest_tags", entryNotFound(err, id))
	}
	tags, err := s.store.ListTags(ctx, c.User.ID)
	if err != nil {
		return nil, s.paramsErr(ctx, "suggest_tags", err)
	}
	if tags == nil {
		tags = []epicme.TagRef{}
	}
	tagsJSON, err := json.Marshal(tags)
	if err != nil {
		return nil, s.paramsErr(ctx, "suggest_tags", epicme.Internal(err))
	}
	entryJSON, err := json.Marshal(e)
	if err != nil {
		return nil, s.paramsErr(ctx, "suggest_tags", epicme.Internal(err))
	}
	text := fmt.Sprintf(`Below is my journal entry with ID %d and the tags I already have.
Suggest up to 5 tags that fit this entry. Prefer my existing tags; create a new tag only when none fits.
Use the create_tag tool to create any new tag, and the add_tag_to_entry tool to add each tag to entry %d.`, e.ID, e.ID)
	return &mcp.GetPromptResult{
		Description: fmt.Sprintf("Suggest tags for entry %q (ID: %d)", e.Title, e.ID),
		Messages: []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text)),
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewEmbeddedResource(mcp.TextResourceContents{
				URI: uriTags, MIMEType: mimeJSON, Text: string(tagsJSON),
			})),
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewEmbeddedResource(mcp.TextResourceContents{
				URI: entryURI(e.ID), MIMEType: mimeJSON, Text: string(entryJSON),
			})),
		},
	}, nil
}
