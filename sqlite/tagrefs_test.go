package sqlite

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/epicme/epicme"
)

// TestParseTagRefsReadsWhatSQLiteWrites reads the tags column of entries
// whose tag names hold every kind of character and compares it with
// encoding/json's reading.
func TestParseTagRefsReadsWhatSQLiteWrites(t *testing.T) {
	for _, c := range []struct {
		in       string
		wantFast bool
	}{
		{`[{"id":1,"name":"a"}]`, true},
		{`[{"id":1,"name":"a"},{"id":22,"name":"Zürich 😀 <b> & more"}]`, true},
		{`[{"id":3,"name":"say \"hi\""}]`, false},
		{`[{"id":4,"name":"tab\tnewline\n"}]`, false},
		{`[{"id":5,"name":"a,b"},{"id":6,"name":"}{"}]`, true},
		{`[{"id":7,"name":"{\"id\":8}"},{"id":9,"name":"x"}]`, false},
	} {
		got, ok := parseTagRefs(c.in)
		if ok != c.wantFast {
			t.Errorf("parseTagRefs(%s) ok = %v, want %v", c.in, ok, c.wantFast)
		}
		var want []epicme.TagRef
		if err := json.Unmarshal([]byte(c.in), &want); err != nil {
			t.Fatal(err)
		}
		if ok && !reflect.DeepEqual(got, want) {
			t.Errorf("parseTagRefs(%s) = %+v, encoding/json %+v", c.in, got, want)
		}
		if n := countTagRefs(c.in); n != len(want) {
			t.Errorf("countTagRefs(%s) = %d, want %d", c.in, n, len(want))
		}
	}
}

// FuzzParseTagRefs: whatever parseTagRefs accepts, encoding/json reads the
// same way.
func FuzzParseTagRefs(f *testing.F) {
	for _, s := range []string{`[]`, `[{"id":1,"name":"a"}]`, `[{"id":1,"name":"a"},{"id":2,"name":"b"}]`, `[{"id":-1,"name":""}]`, `[{"id":1,"name":"a"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTagRefs(s)
		if !ok {
			return
		}
		var want []epicme.TagRef
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatalf("parseTagRefs accepted %q, which encoding/json refuses: %v", s, err)
		}
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseTagRefs(%q) = %+v, encoding/json %+v", s, got, want)
		}
	})
}
