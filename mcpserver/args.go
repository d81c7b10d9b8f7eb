package mcpserver

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/epicme/epicme"
)

// args are a tool call's arguments, read by the tool's params (see param).
type args struct {
	m map[string]any
}

// newArgs checks that the arguments are an object with only known names
// (addTool passes the properties of the tool's input schema).
func newArgs(raw any, known ...string) (args, error) {
	if raw == nil {
		return args{m: map[string]any{}}, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return args{}, epicme.Invalid("arguments", "arguments must be an object")
	}
	for k := range m {
		if !slices.Contains(known, k) {
			if len(known) == 0 {
				return args{}, epicme.Invalid(k, "unknown argument %q: this tool takes no arguments", k)
			}
			return args{}, epicme.Invalid(k, "unknown argument %q (expected %s)", k, strings.Join(known, ", "))
		}
	}
	return args{m: m}, nil
}

// param is one tool argument: its name, whether a call must give it, its
// JSON Schema in the tool's inputSchema, and read, which checks a call's
// value by the same rule and converts it (present is false when the call
// leaves the argument out). Each kind of argument has one constructor, which
// builds the schema and the reader from the same inputs, and a tool's
// inputSchema is built from its params (inputs), so that the names, the
// required list, the schemas and the checks are stated once.
//
// Lengths of text are the domain's to check (package epicme): the schema
// states them from the same constants, the reader does not check them again.
type param[T any] struct {
	name     string
	required bool
	schema   js
	read     func(v any, present bool) (T, error)
}

// get reads p from a call's arguments. A broken rule is an EINVALID error
// naming the argument and the rule, so that a model can correct its call.
func (p param[T]) get(a args) (T, error) {
	v, ok := a.m[p.name]
	return p.read(v, ok)
}

func (p param[T]) spec() (string, js, bool) { return p.name, p.schema, p.required }

// input is a param of any type, as a tool's inputSchema needs it.
type input interface {
	spec() (name string, schema js, required bool)
}

// inputs is the inputSchema of a tool that takes ps.
func inputs(ps ...input) js {
	props := make(js, len(ps))
	var required []string
	for _, p := range ps {
		name, schema, req := p.spec()
		if _, dup := props[name]; dup {
			panic("mcpserver: two params named " + name)
		}
		props[name] = schema
		if req {
			required = append(required, name)
		}
	}
	return object(props, required...)
}

// idParam is a required positive integer, such as an entry's or a tag's id.
func idParam(name, desc string) param[int64] {
	return param[int64]{name, true, js{"type": "integer", "minimum": 1, "description": desc}, func(v any, _ bool) (int64, error) {
		if v == nil {
			return 0, epicme.Invalid(name, "%s is required (a positive integer)", name)
		}
		return positiveInt(name, v)
	}}
}

func positiveInt(name string, v any) (int64, error) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < 1 || f > 1<<53 {
		return 0, epicme.Invalid(name, "%s must be a positive integer", name)
	}
	return int64(f), nil
}

// idsParam is an optional array of at most max positive integers; repeated
// ids are read once.
func idsParam(name, desc string, max int) param[[]int64] {
	schema := js{"type": "array", "items": idProp, "maxItems": max, "description": desc}
	return param[[]int64]{name, false, schema, func(v any, _ bool) ([]int64, error) {
		if v == nil {
			return nil, nil
		}
		list, ok := v.([]any)
		if !ok {
			return nil, epicme.Invalid(name, "%s must be an array of positive integers", name)
		}
		if len(list) > max {
			return nil, epicme.Invalid(name, "%s may hold at most %d ids", name, max)
		}
		out := make([]int64, 0, len(list))
		for i, x := range list {
			id, err := positiveInt(name+"["+strconv.Itoa(i)+"]", x)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
		return out, nil
	}}
}

// intParam is an optional integer within [lo, hi]; 0 when left out.
func intParam(name, desc string, lo, hi int) param[int] {
	return param[int]{name, false, js{"type": "integer", "minimum": lo, "maximum": hi, "description": desc}, func(v any, _ bool) (int, error) {
		if v == nil {
			return 0, nil
		}
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
			return 0, epicme.Invalid(name, "%s must be an integer between %d and %d", name, lo, hi)
		}
		return int(f), nil
	}}
}

// flagParam is an optional boolean. The reference implementation stored
// booleans as 0/1 and clients written for it send numbers, so 0 and 1 are
// accepted too.
func flagParam(name, desc string) param[*bool] {
	schema := js{"type": []string{"boolean", "integer"}, "minimum": 0, "maximum": 1, "description": desc}
	return param[*bool]{name, false, schema, func(v any, _ bool) (*bool, error) {
		switch b := v.(type) {
		case nil:
			return nil, nil
		case bool:
			return &b, nil
		case float64:
			if b == 0 || b == 1 {
				t := b == 1
				return &t, nil
			}
		}
		return nil, epicme.Invalid(name, "%s must be a boolean (true/false, or 1/0)", name)
	}}
}

// textSchema is the schema of a string of minLen to maxLen characters (0:
// no bound), or of null too when nullable; desc "" leaves it undescribed.
func textSchema(desc string, minLen, maxLen int, nullable bool) js {
	s := js{"type": "string"}
	if nullable {
		s["type"] = []string{"string", "null"}
	}
	if minLen > 0 {
		s["minLength"] = minLen
	}
	if maxLen > 0 {
		s["maxLength"] = maxLen
	}
	if desc != "" {
		s["description"] = desc
	}
	return s
}

// str reads a string argument; set is false when it is left out or null.
func str(name string, v any) (s string, set bool, err error) {
	if v == nil {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, epicme.Invalid(name, "%s must be a string", name)
	}
	return s, true, nil
}

// textParam is a required string of minLen to maxLen characters.
func textParam(name, desc string, minLen, maxLen int) param[string] {
	return param[string]{name, true, textSchema(desc, minLen, maxLen, false), func(v any, _ bool) (string, error) {
		s, set, err := str(name, v)
		if err == nil && !set {
			err = epicme.Invalid(name, "%s is required", name)
		}
		return s, err
	}}
}

// optTextParam is a string of minLen to maxLen characters that may be left
// out (nil). Null is allowed, and reads as left out, when nullable; refused
// otherwise (a field an update cannot clear).
func optTextParam(name, desc string, minLen, maxLen int, nullable bool) param[*string] {
	return param[*string]{name, false, textSchema(desc, minLen, maxLen, nullable), func(v any, present bool) (*string, error) {
		if present && v == nil && !nullable {
			return nil, epicme.Invalid(name, "%s cannot be null", name)
		}
		s, set, err := str(name, v)
		if !set {
			return nil, err
		}
		return &s, nil
	}}
}

// clearableParam is a string of at most maxLen characters that null clears:
// nil when left out, a pointer to nil for null, and a pointer to the string
// otherwise.
func clearableParam(name, desc string, maxLen int) param[**string] {
	return param[**string]{name, false, textSchema(desc, 0, maxLen, true), func(v any, present bool) (**string, error) {
		if !present {
			return nil, nil
		}
		var p *string
		if v != nil {
			s, ok := v.(string)
			if !ok {
				return nil, epicme.Invalid(name, "%s must be a string or null", name)
			}
			p = &s
		}
		return &p, nil
	}}
}

// timeParam is an optional RFC 3339 date ("2026-07-28") or date-time; the
// zero time when left out.
func timeParam(name, desc string) param[time.Time] {
	return param[time.Time]{name, false, textSchema(desc, 0, 0, false), func(v any, _ bool) (time.Time, error) {
		s, set, err := str(name, v)
		if !set {
			return time.Time{}, err
		}
		for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
			if t, err := time.Parse(layout, s); err == nil {
				return t, nil
			}
		}
		return time.Time{}, epicme.Invalid(name, "%s must be an RFC 3339 date (2026-07-28) or date-time (2026-07-28T09:00:00Z)", name)
	}}
}

// The paging arguments of a list: limit (0 when left out: the store's
// default) and cursor ("" for the first page, as when null; the only
// argument of its kind, so it has no constructor of its own).
var (
	limitArg  = intParam("limit", fmt.Sprintf("Page size (default %d)", epicme.DefaultPageSize), 1, epicme.MaxPageSize)
	cursorArg = param[string]{"cursor", false, textSchema("nextCursor of the previous page", 0, 0, false), func(v any, _ bool) (string, error) {
		s, _, err := str("cursor", v)
		return s, err
	}}
)

// page reads the paging arguments of a list.
func (a args) page() (limit int, cursor string, err error) {
	if limit, err = limitArg.get(a); err != nil {
		return 0, "", err
	}
	cursor, err = cursorArg.get(a)
	return limit, cursor, err
}

// checkText refuses a JSON text whose strings are not Unicode: raw bytes
// that are not UTF-8, and escaped UTF-16 surrogates that do not pair
// (RFC 8259 §8.2 leaves their meaning undefined). Go's encoding/json turns
// both into U+FFFD without a word, so the check reads the raw bytes, before
// any decoder does. The error names the member the string belongs to (its
// own name when the bad string is a member name) and the rule it broke;
// nothing of the request has been acted on yet.
func checkText(body []byte) error {
	field := ""
	for i := 0; i < len(body); i++ {
		if body[i] != '"' {
			continue
		}
		end, bad := scanString(body, i+1)
		k := end + 1
		for k < len(body) && (body[k] == ' ' || body[k] == '\t' || body[k] == '\n' || body[k] == '\r') {
			k++
		}
		isName := k < len(body) && body[k] == ':'
		if bad != "" {
			if isName || field == "" {
				field = "a member name"
				return epicme.Invalid("", "%s is not valid UTF-8 text: it holds %s; send every string as UTF-8", field, bad)
			}
			return epicme.Invalid(field, "%q is not valid UTF-8 text: it holds %s; send every string as UTF-8", field, bad)
		}
		if isName && end <= len(body) {
			var name string
			if json.Unmarshal(body[i:min(end+1, len(body))], &name) == nil {
				field = name
			}
		}
		i = end
	}
	return nil
}

// scanString reads the JSON string whose text starts at body[i] up to its
// closing quote, and returns the index of that quote with what it holds
// that is not Unicode, if anything.
func scanString(body []byte, i int) (int, string) {
	for i < len(body) && body[i] != '"' {
		switch c := body[i]; {
		case c == '\\' && i+1 < len(body) && body[i+1] == 'u':
			r, ok := hex4(body, i+2)
			if !ok || !utf16.IsSurrogate(r) {
				i += 6
				continue
			}
			if r < 0xDC00 && i+7 < len(body) && body[i+6] == '\\' && body[i+7] == 'u' {
				if r2, ok := hex4(body, i+8); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
					i += 12
					continue
				}
			}
			return i, fmt.Sprintf("the escaped lone surrogate \\u%04x (a character beyond U+FFFF is escaped as a high and a low surrogate, in that order)", r)
		case c == '\\':
			i += 2
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(body[i:])
			if r == utf8.RuneError && size == 1 {
				return i, fmt.Sprintf("the byte %02X, which does not begin or continue a UTF-8 character", c)
			}
			i += size
		}
	}
	return i, ""
}

// hex4 reads the four hexadecimal digits of a \u escape at body[i].
func hex4(body []byte, i int) (rune, bool) {
	if i+4 > len(body) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(body[i:i+4]), 16, 32)
	return rune(n), err == nil
}
