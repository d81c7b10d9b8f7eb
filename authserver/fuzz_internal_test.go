package authserver

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// FuzzMetadataDocument: any fetched Client ID Metadata Document either is
// refused with a document error or describes a public client whose id is
// the URL it came from, with at least one redirect URI, each one the
// registration rules accept, and no secret.
func FuzzMetadataDocument(f *testing.F) {
	id := "https://app.example/client.json"
	for _, s := range []string{
		`{"client_id":"` + id + `","client_name":"App","redirect_uris":["http://127.0.0.1:7777/cb"]}`,
		`{"client_id":"` + id + `","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`,
		`{"client_id":"` + id + `","redirect_uris":["javascript:alert(1)"]}`,
		`{"client_id":"` + id + `","redirect_uris":["https://app.example/cb"],"client_secret":"x"}`,
		`{"client_id":"https://evil.example/c.json","redirect_uris":["https://evil.example/cb"]}`,
		`{"client_id":"` + id + `","redirect_uris":["https://app.example/cb#frag"],"logo_uri":"file:///etc/passwd"}`,
		`[]`, `null`, `{"client_id":1}`, `{"client_id":"` + id + `","redirect_uris":[]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		c, err := parseMetadataDocument(id, []byte(doc))
		if err != nil {
			if c != nil || !strings.HasPrefix(err.Error(), "client metadata document: ") {
				t.Fatalf("error %v with client %+v", err, c)
			}
			return
		}
		if c.ID != id || c.Kind != ClientMetadataDoc || c.AuthMethod != AuthNone || len(c.SecretHash) != 0 {
			t.Fatalf("accepted %q as %+v", doc, c)
		}
		checkAcceptedRedirects(t, doc, c.RedirectURIs)
	})
}

// FuzzRegistrationRequest: any Dynamic Client Registration body (RFC 7591
// §2) is refused with an OAuth error of status 400, or yields metadata
// within the server's bounds.
func FuzzRegistrationRequest(f *testing.F) {
	for _, s := range []string{
		`{"redirect_uris":["http://127.0.0.1:9999/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`,
		`{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_basic","client_name":"Server App","scope":"entries:read"}`,
		`{"redirect_uris":["http://evil.example/cb"]}`,
		`{"redirect_uris":["https://a.example/cb"],"grant_types":["implicit"],"response_types":["token"]}`,
		`{"redirect_uris":["https://a.example/cb"],"client_uri":"javascript:x","contacts":["a","b","c","d","e","f"]}`,
		`{"redirect_uris":["myapp:/cb"]}`, `{"redirect_uris":["https://user:pw@a.example/cb"]}`, `{}`, `[]`,
	} {
		f.Add(s)
	}
	scopes := []string{"user:read", "entries:read", "entries:write", "tags:read", "tags:write"}
	f.Fuzz(func(t *testing.T, body string) {
		var m registrationRequest
		if json.Unmarshal([]byte(body), &m) != nil {
			return
		}
		if e := m.validate(scopes); e != nil {
			if e.Status != 400 || e.Code == "" || e.Description == "" {
				t.Fatalf("refusal %+v", e)
			}
			return
		}
		if len(m.ClientName) > 100 || len(m.Contacts) > 5 || len(m.RedirectURIs) > 10 {
			t.Fatalf("accepted oversized metadata %q", body)
		}
		for _, s := range strings.Fields(m.Scope) {
			if !contains(scopes, s) {
				t.Fatalf("accepted unknown scope %q", s)
			}
		}
		checkAcceptedRedirects(t, body, m.RedirectURIs)
	})
}

func checkAcceptedRedirects(t *testing.T, doc string, uris []string) {
	t.Helper()
	if len(uris) == 0 {
		t.Fatalf("accepted %q without redirect URIs", doc)
	}
	for _, u := range uris {
		if err := checkRedirectURI(u); err != nil {
			t.Fatalf("accepted redirect URI %q of %q: %v", u, doc, err)
		}
		p, err := url.Parse(u)
		if err != nil || p.Fragment != "" || p.User != nil {
			t.Fatalf("accepted redirect URI %q", u)
		}
	}
}
