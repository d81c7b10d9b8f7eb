package mcpserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/mcp"
)

func (s *Server) addResources() {
	s.mcp.AddResource(mcp.NewResource(uriCurrentUser, "Current user",
		mcp.WithResourceDescription("The signed-in user"),
		mcp.WithMIMEType(mimeJSON)), s.readCurrentUser)
	s.mcp.AddResource(mcp.NewResource(uriTags, "Tags",
		mcp.WithResourceDescription("All your tags"),
		mcp.WithMIMEType(mimeJSON)), s.readTags)
	s.mcp.AddResourceTemplate(mcp.NewResourceTemplate(uriEntryTemplate, "Journal entry",
		mcp.WithTemplateDescription("A journal entry with its tags"),
		mcp.WithTemplateMIMEType(mimeJSON)), s.readEntry)
	s.mcp.AddResourceTemplate(mcp.NewResourceTemplate(uriTagTemplate, "Tag",
		mcp.WithTemplateDescription("A tag"),
		mcp.WithTemplateMIMEType(mimeJSON)), s.readTag)
}

func jsonContents(uri string, v any) ([]mcp.ResourceContents, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, epicme.Internal(err)
	}
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: mimeJSON, Text: string(b)}}, nil
}

// readCurrentUser serves epicme://users/current.
func (s *Server) readCurrentUser(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	c, err := s.caller(ctx)
	if err != nil {
		return nil, s.rpcErr(ctx, req.Params.URI, err)
	}
	return jsonContents(req.Params.URI, c.User)
}

// readTags serves epicme://tags.
func (s *Server) readTags(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	c, err := s.caller(ctx)
	if err != nil {
		return nil, s.rpcErr(ctx, req.Params.URI, err)
	}
	tags, err := s.store.ListTags(ctx, c.User.ID)
	if err != nil {
		return nil, s.rpcErr(ctx, req.Params.URI, err)
	}
	if tags == nil {
		tags = []epicme.TagRef{}
	}
	return jsonContents(req.Params.URI, tags)
}

// uriID reads the id at the end of a templated URI.
func uriID(uri, prefix string) (int64, error) {
	s := strings.TrimPrefix(uri, prefix)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 || strconv.FormatInt(id, 10) != s {
		return 0, epicme.Invalid("uri", "the id in %s must be a positive integer", uri)
	}
	return id, nil
}

// readEntry serves epicme://entries/{id}.
func (s *Server) readEntry(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	c, err := s.caller(ctx)
	if err != nil {
		return nil, s.rpcErr(ctx, req.Params.URI, err)
	}
	id, err := uriID(req.Params.URI, uriEntryPrefix)
	if err != nil {
		return nil, s.rpcErr(ctx, req.Params.URI, err)
	}
	e, err := s.store.GetEntry(ctx, c.User.ID, id)
	if err != nil {
		return nil, s.rpcErr(ctx, req.Params.URI, entryNotFound(err, id))
	}
	return jsonContents(req.Params.URI, e)
}

// readTag serves epicme://tags/{id}.
func (s *Server) readTag(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	c, err := s.caller(ctx)
	if err != nil {
		return nil, s.rpcErr(ctx, req.Params.URI, err)
	}
	id, err := uriID(req.Params.URI, uriTagPrefix)
	if err != nil {
		return nil, s.rpcErr(ctx, req.Params.URI, err)
	}
	t, err := s.store.GetTag(ctx, c.User.ID, id)
	if err != nil {
		return nil, s.rpcErr(ctx, req.Params.URI, tagNotFound(err, id))
	}
	return jsonContents(req.Params.URI, t)
}

// resourceCursorPrefix marks our resources/list cursors. mcp-go decodes a
// cursor as standard base64 before our hook sees the request, so ours is
// base64 too: of this prefix and the store's entry cursor.
const resourceCursorPrefix = "entries:"

// listResources rebuilds resources/list for the caller (MCP
// server/resources, "Listing Resources"; pagination per
// server/utilities/pagination): the fixed resources its scopes allow, then
// its entries, newest first, a page at a time. mcp-go lists only fixed
// resources and has no list handler, so this runs as its after-list hook and
// replaces the result. A hook cannot fail the request: on a store error the
// list ends early and the error goes to the log.
func (s *Server) listResources(ctx context.Context, _ any, req *mcp.ListResourcesRequest, res *mcp.ListResourcesResult) {
	fixed := res.Resources
	res.Resources = []mcp.Resource{}
	res.NextCursor = ""
	c, err := s.caller(ctx)
	if err != nil {
		return
	}
	var f epicme.EntryFilter
	if req.Params.Cursor == "" {
		for _, r := range fixed {
			if s.allows(c, "resources/read", r.URI) {
				res.Resources = append(res.Resources, r)
			}
		}
	} else {
		b, err := base64.StdEncoding.DecodeString(string(req.Params.Cursor))
		cur, ok := strings.CutPrefix(string(b), resourceCursorPrefix)
		if err != nil || !ok || cur == "" {
			s.logger.InfoContext(ctx, "resources/list: bad cursor")
			return
		}
		f.Cursor = cur
	}
	if !s.allows(c, "resources/read", uriEntryTemplate) {
		return
	}
	f.Limit = epicme.DefaultPageSize
	page, err := s.store.ListEntries(ctx, c.User.ID, f)
	if err != nil {
		s.logger.WarnContext(ctx, "resources/list: listing entries failed", "err", err)
		return
	}
	for _, e := range page.Entries {
		res.Resources = append(res.Resources, mcp.Resource{
			URI:         entryURI(e.ID),
			Name:        e.Title,
			Description: `Journal Entry: "` + e.Title + `"`,
			MIMEType:    mimeJSON,
		})
	}
	if page.NextCursor != "" {
		res.NextCursor = mcp.Cursor(base64.StdEncoding.EncodeToString([]byte(resourceCursorPrefix + page.NextCursor)))
	}
}

// completer completes the id of the resource templates and the entryId of
// the suggest_tags prompt (MCP server/utilities/completion), from the
// caller's own rows only.
type completer struct{ s *Server }

const maxCompletions = 100 // the most values a completion may carry

// CompleteResourceArgument implements server.ResourceCompletionProvider.
func (c completer) CompleteResourceArgument(ctx context.Context, uri string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	if arg.Name != "id" {
		return &mcp.Completion{Values: []string{}}, nil
	}
	switch uri {
	case uriEntryTemplate:
		return c.entryIDs(ctx, arg.Value)
	case uriTagTemplate:
		return c.tagIDs(ctx, arg.Value)
	}
	return &mcp.Completion{Values: []string{}}, nil
}

// CompletePromptArgument implements server.PromptCompletionProvider.
func (c completer) CompletePromptArgument(ctx context.Context, prompt string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	if prompt == "suggest_tags" && arg.Name == "entryId" {
		caller, err := c.s.caller(ctx)
		if err != nil || !c.s.allows(caller, "prompts/get", prompt) {
			return &mcp.Completion{Values: []string{}}, nil
		}
		return c.entryIDs(ctx, arg.Value)
	}
	return &mcp.Completion{Values: []string{}}, nil
}

// entryIDs completes entry ids, newest first, that start with prefix. A
// caller without entries:read gets nothing.
func (c completer) entryIDs(ctx context.Context, prefix string) (*mcp.Completion, error) {
	caller, err := c.s.caller(ctx)
	if err != nil || !c.s.allows(caller, "resources/read", uriEntryTemplate) {
		return &mcp.Completion{Values: []string{}}, nil
	}
	values := []string{}
	f := epicme.EntryFilter{Limit: epicme.MaxPageSize}
	// Look at the newest few pages only: completion must stay cheap for a
	// journal of any size.
	for pages := 0; pages < 10 && len(values) < maxCompletions; pages++ {
		page, err := c.s.store.ListEntries(ctx, caller.User.ID, f)
		if err != nil {
			return nil, c.failed(ctx, err)
		}
		for _, e := range page.Entries {
			if id := strconv.FormatInt(e.ID, 10); strings.HasPrefix(id, prefix) && len(values) < maxCompletions {
				values = append(values, id)
			}
		}
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	return &mcp.Completion{Values: values, Total: len(values)}, nil
}

// failed is the error of a completion whose store read failed. mcp-go
// reports a completion provider's error as -32603 with the error's text,
// whatever its type, so only the message is returned (mapRPC logs it).
func (c completer) failed(ctx context.Context, err error) error {
	return errors.New(c.s.mapRPC(ctx, "completion", err, false).message)
}

// tagIDs completes tag ids that start with prefix.
func (c completer) tagIDs(ctx context.Context, prefix string) (*mcp.Completion, error) {
	caller, err := c.s.caller(ctx)
	if err != nil || !c.s.allows(caller, "resources/read", uriTagTemplate) {
		return &mcp.Completion{Values: []string{}}, nil
	}
	tags, err := c.s.store.ListTags(ctx, caller.User.ID)
	if err != nil {
		return nil, c.failed(ctx, err)
	}
	values := []string{}
	for _, t := range tags {
		if id := strconv.FormatInt(t.ID, 10); strings.HasPrefix(id, prefix) && len(values) < maxCompletions {
			values = append(values, id)
		}
	}
	return &mcp.Completion{Values: values, Total: len(values)}, nil
}
