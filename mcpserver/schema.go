package mcpserver

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/mcp"
)

// JSON Schemas (draft 2020-12, as MCP tool schemas use) of tool inputs and
// outputs, written once here so that the schemas and the JSON the tools
// produce are easy to compare.

type js = map[string]any

func object(props js, required ...string) js {
	o := js{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

var (
	idProp        = js{"type": "integer", "minimum": 1}
	nullableText  = js{"type": []string{"string", "null"}}
	dateTime      = js{"type": "string", "format": "date-time"}
	tagRefSchema  = object(js{"id": idProp, "name": js{"type": "string"}}, "id", "name")
	tagRefsSchema = js{"type": "array", "items": tagRefSchema}

	entrySchema = object(js{
		"id":         idProp,
		"userId":     js{"type": "string"},
		"title":      js{"type": "string"},
		"content":    js{"type": "string"},
		"mood":       nullableText,
		"location":   nullableText,
		"weather":    nullableText,
		"isPrivate":  js{"type": "boolean"},
		"isFavorite": js{"type": "boolean"},
		"createdAt":  dateTime,
		"updatedAt":  dateTime,
		"tags":       tagRefsSchema,
	}, "id", "userId", "title", "content", "mood", "location", "weather", "isPrivate", "isFavorite", "createdAt", "updatedAt")

	tagSchema = object(js{
		"id":          idProp,
		"userId":      js{"type": "string"},
		"name":        js{"type": "string"},
		"description": nullableText,
		"createdAt":   dateTime,
		"updatedAt":   dateTime,
	}, "id", "userId", "name", "description", "createdAt", "updatedAt")

	entryTagSchema = object(js{
		"id":        idProp,
		"userId":    js{"type": "string"},
		"entryId":   idProp,
		"tagId":     idProp,
		"createdAt": dateTime,
		"updatedAt": dateTime,
	}, "id", "userId", "entryId", "tagId", "createdAt", "updatedAt")

	userSchema = object(js{
		"id":        js{"type": "string"},
		"issuer":    js{"type": "string"},
		"subject":   js{"type": "string"},
		"email":     js{"type": "string"},
		"createdAt": dateTime,
		"updatedAt": dateTime,
	}, "id", "issuer", "subject", "email", "createdAt", "updatedAt")

	entrySummarySchema = object(js{
		"id":         idProp,
		"title":      js{"type": "string"},
		"tagCount":   js{"type": "integer", "minimum": 0},
		"isFavorite": js{"type": "boolean"},
		"createdAt":  dateTime,
	}, "id", "title", "tagCount", "isFavorite", "createdAt")

	searchHitSchema = object(js{
		"id":        idProp,
		"title":     js{"type": "string"},
		"snippet":   js{"type": "string"},
		"createdAt": dateTime,
	}, "id", "title", "snippet", "createdAt")
)

// Annotations (MCP 2025-06-18 and later, server/tools, ToolAnnotations).
// EpicMe touches nothing outside the user's journal, so openWorldHint is
// false everywhere.
func annotations(title string, readOnly, destructive, idempotent bool) mcp.ToolAnnotation {
	return mcp.ToolAnnotation{
		Title:           title,
		ReadOnlyHint:    mcp.ToBoolPtr(readOnly),
		DestructiveHint: mcp.ToBoolPtr(destructive),
		IdempotentHint:  mcp.ToBoolPtr(idempotent),
		OpenWorldHint:   mcp.ToBoolPtr(false),
	}
}

func readOnly(title string) mcp.ToolAnnotation { return annotations(title, true, false, true) }

// newTool builds a tool from its parts.
func newTool(name, title, description string, input, output js, ann mcp.ToolAnnotation) mcp.Tool {
	return mcp.Tool{
		Name:            name,
		Title:           title,
		Description:     description,
		RawInputSchema:  raw(input),
		RawOutputSchema: raw(output),
		Annotations:     ann,
	}
}

// toolResult builds a result: structuredContent, and content made of the
// sentence (if any), the resource links, and the JSON text of
// structuredContent (for clients that read only content).
func toolResult(structured any, sentence string, links ...mcp.Content) (*mcp.CallToolResult, error) {
	var b []byte
	var err error
	if a, ok := structured.(jsonAppender); ok {
		var buf bytes.Buffer
		err = a.appendJSON(&buf)
		b = buf.Bytes()
	} else {
		b, err = json.Marshal(structured)
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}
	content := make([]mcp.Content, 0, len(links)+2)
	if sentence != "" {
		content = append(content, mcp.NewTextContent(sentence))
	}
	content = append(content, links...)
	content = append(content, mcp.NewTextContent(string(b)))
	// json.RawMessage keeps mcp-go from encoding the same value twice.
	return &mcp.CallToolResult{Content: content, StructuredContent: json.RawMessage(b)}, nil
}

func entryURI(id int64) string { return uriEntryPrefix + strconv.FormatInt(id, 10) }
func tagURI(id int64) string   { return uriTagPrefix + strconv.FormatInt(id, 10) }

func entryLink(id int64, title string) mcp.Content {
	return mcp.NewResourceLink(entryURI(id), title, `Journal Entry: "`+title+`"`, mimeJSON)
}

func tagLink(id int64, name string) mcp.Content {
	return mcp.NewResourceLink(tagURI(id), name, `Tag: "`+name+`"`, mimeJSON)
}
