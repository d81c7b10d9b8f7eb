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

// args reads a tool's arguments. Each getter checks one argument's type and
// returns an EINVALID error naming the argument and the rule it broke, so a
// model can correct its call.
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

// id reads a required positive integer such as an entry or tag id.
func (a args) id(name string) (int64, error) {
	v, ok := a.m[name]
	if !ok || v == nil {
		return 0, epicme.Invalid(name, "%s is required (a positive integer)", name)
	}
	return positiveInt(name, v)
}

func positiveInt(name string, v any) (int64, error) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < 1 || f > 1<<53 {
		return 0, epicme.Invalid(name, "%s must be a positive integer", name)
	}
	return int64(f), nil
}

// str reads a required string.
func (a args) str(name string) (string, error) {
	v, ok := a.m[name]
	if !ok || v == nil {
		return "", epicme.Invalid(name, "%s is required", name)
	}
	s, ok := v.(string)
	if !ok {
		return "", epicme.Invalid(name, "%s must be a string", name)
	}
	return s, nil
}

// optStr reads an optional string: nil when absent or null.
func (a args) optStr(name string) (*string, error) {
	v, ok := a.m[name]
	if !ok || v == nil {
		return nil, nil
	}
	s, ok := v.(string)
	if !ok {
		return nil, epicme.Invalid(name, "%s must be a string", name)
	}
	return &s, nil
}

// clearable reads a string that null clears: nil when absent, a pointer to
// nil for null, and a pointer to the string otherwise.
func (a args) clearable(name string) (**string, error) {
	v, ok := a.m[name]
	if !ok {
		return nil, nil
	}
	if v == nil {
		var none *string
		return &none, nil
	}
	s, ok := v.(string)
	if !ok {
		return nil, epicme.Invalid(name, "%s must be a string or null", name)
	}
	p := &s
	return &p, nil
}

// optBool reads an optional boolean. The reference implementation stored
// booleans as 0/1 and clients written for it send numbers, so 0 and 1 are
// accepted too.
func (a args) optBool(name string) (*bool, error) {
	v, ok := a.m[name]
	if !ok || v == nil {
		return nil, nil
	}
	switch b := v.(type) {
	case bool:
		return &b, nil
	case float64:
		if b == 0 || b == 1 {
			t := b == 1
			return &t, nil
		}
	}
	return nil, epicme.Invalid(name, "%s must be a boolean (true/false, or 1/0)", name)
}

// optInt reads an optional integer within [lo, hi]; 0 when absent.
func (a args) optInt(name string, lo, hi int) (int, error) {
	v, ok := a.m[name]
	if !ok || v == nil {
		return 0, nil
	}
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return 0, epicme.Invalid(name, "%s must be an integer between %d and %d", name, lo, hi)
	}
	return int(f), nil
}

// ids reads an optional array of positive integers.
func (a args) ids(name string, max int) ([]int64, error) {
	v, ok := a.m[name]
	if !ok || v == nil {
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
}

// optTime reads an optional RFC 3339 date ("2026-07-28") or date-time.
func (a args) optTime(name string) (time.Time, error) {
	s, err := a.optStr(name)
	if err != nil || s == nil {
		return time.Time{}, err
	}
	if t, err := time.Parse(time.RFC3339Nano, *s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, *s); err == nil {
		return t, nil
	}
	return time.Time{}, epicme.Invalid(name, "%s must be an RFC 3339 date (2026-07-28) or date-time (2026-07-28T09:00:00Z)", name)
}

// page reads the paging arguments of a list: limit (0 when left out: the
// store's default) and cursor ("" for the first page).
func (a args) page() (limit int, cursor string, err error) {
	if limit, err = a.optInt("limit", 1, epicme.MaxPageSize); err != nil {
		return 0, "", err
	}
	cur, err := a.optStr("cursor")
	if err != nil || cur == nil {
		return limit, "", err
	}
	return limit, *cur, nil
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
