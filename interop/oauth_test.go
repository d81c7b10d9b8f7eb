package interop

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// tokenRequest asks issuer.mjs for tokens by the authorization code flow with
// PKCE (RFC 6749 §4.1, RFC 7636), signing in as a user on its login page.
type tokenRequest struct {
	// User signs in; Password defaults to the user's password in issuerUsers.
	User, Password string
	// ClientID defaults to "interop-app".
	ClientID string
	// Scopes are requested; Resource is the RFC 8707 resource indicator
	// (default: the issuer's EpicMe resource).
	Scopes   []string
	Resource string
	// Grant, when not nil, lists the only scopes the user leaves ticked on the
	// consent page; nil grants everything asked for.
	Grant []string
}

// tokenResponse is the token endpoint's answer (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
}

// tokenError is the token endpoint's error answer (RFC 6749 §5.2).
type tokenError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *tokenError) Error() string {
	return fmt.Sprintf("token endpoint: %d %s: %s", e.Status, e.Code, e.Description)
}

// mint runs the whole flow and returns the tokens, failing t on any error.
func (is *issuer) mint(t *testing.T, req tokenRequest) tokenResponse {
	t.Helper()
	tok, err := is.authorize(req)
	if err != nil {
		t.Fatalf("mint a token for %s (%v at %s): %v", req.User, req.Scopes, req.Resource, err)
	}
	return tok
}

// browser is a user agent: it keeps cookies and follows redirects, except
// the final one to the client's redirect URI, which it hands back.
func (is *issuer) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > 10 {
				return errors.New("too many redirects")
			}
			if strings.HasPrefix(req.URL.String(), is.Issuer+"/") {
				return nil
			}
			return http.ErrUseLastResponse
		},
	}
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+/(?:login|confirm))">`)
	scopeBox   = regexp.MustCompile(`<input type="checkbox" name="scope" value="([^"]+)"`)
)

// authorize signs in as req.User and consents, like a person in a browser.
func (is *issuer) authorize(req tokenRequest) (tokenResponse, error) {
	if req.ClientID == "" {
		req.ClientID = "interop-app"
	}
	if req.Resource == "" {
		req.Resource = is.Resource
	}
	if req.Password == "" {
		req.Password = issuerUsers[req.User]
	}
	verifier := randomString()
	sum := sha256.Sum256([]byte(verifier))
	state := randomString()
	redirectURI := "http://127.0.0.1:9/callback" // loopback: any port will do (RFC 8252 §7.3)
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {req.ClientID},
		"redirect_uri":          {redirectURI},
		"scope":                 {strings.Join(req.Scopes, " ")},
		"resource":              {req.Resource},
		"state":                 {state},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	b := is.browser()
	page, err := get(b, is.AuthorizationEndpoint+"?"+q.Encode())
	if err != nil {
		return tokenResponse{}, err
	}
	var final *http.Response
	for range 4 {
		if page.StatusCode == http.StatusSeeOther || page.StatusCode == http.StatusFound {
			final = page.Response
			break
		}
		m := formAction.FindStringSubmatch(page.body)
		if m == nil {
			return tokenResponse{}, fmt.Errorf("%s answered %d without a login or consent form:\n%s", page.Request.URL, page.StatusCode, page.body)
		}
		action, err := page.Request.URL.Parse(html.UnescapeString(m[1]))
		if err != nil {
			return tokenResponse{}, err
		}
		form := url.Values{}
		if strings.HasSuffix(action.Path, "/login") {
			form.Set("login", req.User)
			form.Set("password", req.Password)
		} else {
			for _, box := range scopeBox.FindAllStringSubmatch(page.body, -1) {
				v := html.UnescapeString(box[1])
				_, scope, _ := strings.Cut(v, " ")
				if req.Grant == nil || slices.Contains(req.Grant, scope) {
					form.Add("scope", v)
				}
			}
		}
		if page, err = postForm(b, action.String(), form); err != nil {
			return tokenResponse{}, err
		}
		if strings.HasSuffix(action.Path, "/login") && page.StatusCode == http.StatusUnauthorized {
			return tokenResponse{}, fmt.Errorf("the login page refused %s's password", req.User)
		}
	}
	if final == nil {
		return tokenResponse{}, errors.New("the authorization server never redirected back to the client")
	}
	back, err := url.Parse(final.Header.Get("Location"))
	if err != nil {
		return tokenResponse{}, err
	}
	cb := back.Query()
	if e := cb.Get("error"); e != "" {
		return tokenResponse{}, fmt.Errorf("authorization refused: %s: %s", e, cb.Get("error_description"))
	}
	if cb.Get("state") != state {
		return tokenResponse{}, fmt.Errorf("callback state %q, want the one sent", cb.Get("state"))
	}
	// RFC 9207: the iss parameter names the authorization server that answered.
	if cb.Get("iss") != is.Issuer {
		return tokenResponse{}, fmt.Errorf("callback iss %q, want %q", cb.Get("iss"), is.Issuer)
	}
	return is.token(url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {cb.Get("code")},
		"redirect_uri":  {redirectURI},
		"client_id":     {req.ClientID},
		"code_verifier": {verifier},
		"resource":      {req.Resource},
	})
}

// refresh exchanges a refresh token (RFC 6749 §6), optionally for another
// resource.
func (is *issuer) refresh(clientID, refreshToken, resource string) (tokenResponse, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {clientID}}
	if resource != "" {
		form.Set("resource", resource)
	}
	return is.token(form)
}

func (is *issuer) token(form url.Values) (tokenResponse, error) {
	res, err := http.PostForm(is.TokenEndpoint, form)
	if err != nil {
		return tokenResponse{}, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		e := &tokenError{Status: res.StatusCode}
		_ = json.Unmarshal(body, e)
		return tokenResponse{}, e
	}
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil {
		return tokenResponse{}, fmt.Errorf("token endpoint answered %s: %w", body, err)
	}
	return tok, nil
}

// introspect asks the issuer about a token as EpicMe's resource server client
// would (RFC 7662 §2.1).
func (is *issuer) introspect(t *testing.T, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, is.IntrospectionEndpoint, strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(is.ResourceServerClient.ClientID), url.QueryEscape(is.ResourceServerClient.ClientSecret))
	var out map[string]any
	if status := doJSON(t, req, &out); status != http.StatusOK {
		t.Fatalf("introspection answered %d: %v", status, out)
	}
	return out
}

// revoke revokes a token as the public client that holds it (RFC 7009 §2.1).
func (is *issuer) revoke(t *testing.T, clientID, token string) {
	t.Helper()
	res, err := http.PostForm(is.RevocationEndpoint, url.Values{"token": {token}, "client_id": {clientID}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("revocation answered %d: %s", res.StatusCode, body)
	}
}

type page struct {
	*http.Response
	body string
}

func get(c *http.Client, u string) (page, error) {
	res, err := c.Get(u)
	return readPage(res, err)
}

func postForm(c *http.Client, u string, form url.Values) (page, error) {
	res, err := c.PostForm(u, form)
	return readPage(res, err)
}

func readPage(res *http.Response, err error) (page, error) {
	if err != nil {
		return page{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return page{res, string(body)}, err
}

func doJSON(t *testing.T, req *http.Request, out any) int {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s answered %d with non-JSON %q", req.Method, req.URL, res.StatusCode, body)
		}
	}
	return res.StatusCode
}

func randomString() string {
	return rand.Text() + rand.Text()
}
