package epicme_test

import (
	"strings"
	"testing"

	"github.com/epicme/epicme"
)

// TestEnsureUserInput: an external issuer's bad email is dropped, the user
// kept; a local account's is refused; the subject is required.
func TestEnsureUserInput(t *testing.T) {
	const idp = "https://idp.example"
	for _, c := range []struct {
		name                   string
		issuer, subject, email string
		wantField              string // "" for success
		wantSubject, wantEmail string
	}{
		{"vouched email kept, lower case", idp, "sub", " Ann@Example.COM ", "", "sub", "ann@example.com"},
		{"no email", idp, "sub", "", "", "sub", ""},
		{"vouched bad email dropped", idp, "sub", "not-an-email", "", "sub", ""},
		{"vouched overlong email dropped", idp, "sub", strings.Repeat("a", epicme.MaxEmailLen) + "@x", "", "sub", ""},
		{"local bad email refused", epicme.LocalIssuer, "sub", "not-an-email", "email", "", ""},
		{"local without email refused", epicme.LocalIssuer, "sub", "", "email", "", ""},
		{"external subject required", idp, "", "ann@example.com", "subject", "", ""},
		{"external subject required with bad email", idp, "", "not-an-email", "subject", "", ""},
		{"local subject required", epicme.LocalIssuer, "", "ann@example.com", "subject", "", ""},
		{"NUL in subject refused", idp, "s\x00", "not-an-email", "subject", "", ""},
		{"no issuer refused", "", "sub", "not-an-email", "issuer", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			in, err := epicme.EnsureUserInput(c.issuer, c.subject, c.email)
			if c.wantField != "" {
				e, ok := err.(*epicme.Error)
				if !ok || e.Code != epicme.EINVALID || e.Field != c.wantField {
					t.Fatalf("err = %#v, want EINVALID on %q", err, c.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := epicme.NewUser{Issuer: c.issuer, Subject: c.wantSubject, Email: c.wantEmail}
			if in != want {
				t.Fatalf("input = %+v, want %+v", in, want)
			}
		})
	}
}
