package authserver_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
	"github.com/epicme/epicme/ratelimit"
)

// registerFrom registers a public client as if from xff (through a trusted
// proxy).
func registerFrom(t *testing.T, e *testserver.Env, xff string) testserver.Reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.Issuer+authserver.RegistrationPath,
		strings.NewReader(`{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`))
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	return testserver.Do(t, nil, req)
}

// Real clients register on every authorization; from loopback (this
// machine) registration is not limited, as no other limit is.
func TestRule_DCRLoopbackExempt(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.Sources = ratelimit.Sources{ExemptLoopback: true} })
	for i := range 50 {
		if r := registerFrom(t, e, ""); r.Status != http.StatusCreated {
			t.Fatalf("registration %d from loopback: %d %s", i+1, r.Status, r.Body)
		}
	}
}

// A refused registration answers 429 with Retry-After and an RFC 7591
// §3.2.2 error code, not an authorization-endpoint one.
func TestRule_DCRRefusalUsesRegistrationErrorCode(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.Registration.PerSource = 1 })
	registerFrom(t, e, "")
	r := registerFrom(t, e, "")
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "3600" {
		t.Fatalf("second registration: %d Retry-After %q", r.Status, r.Header.Get("Retry-After"))
	}
	if m := r.JSON(t); m["error"] != "invalid_client_metadata" || !strings.Contains(m["error_description"].(string), "too many registrations") {
		t.Fatalf("refusal body: %s", r.Body)
	}
}

// The review registered from 25 addresses of one /64 and all succeeded:
// every address of a /64 is now one source.
func TestAttack_DCRRotatingIPv6Addresses(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) {
		c.SourceAddress = authserver.ForwardedFor
		c.Sources = ratelimit.Sources{ExemptLoopback: true}
	})
	created := 0
	for i := range 25 {
		if r := registerFrom(t, e, fmt.Sprintf("2001:db8:7:1::%x", i+1)); r.Status == http.StatusCreated {
			created++
		}
	}
	if created != 20 {
		t.Fatalf("%d registrations from 25 addresses of one /64, want the source's 20", created)
	}
	// Another network is not affected.
	if r := registerFrom(t, e, "2001:db8:99:1::1"); r.Status != http.StatusCreated {
		t.Fatalf("another /48: %d %s", r.Status, r.Body)
	}
}

// Rotating /64s within one /48 meets the /48's aggregate.
func TestAttack_DCRRotatingIPv6Networks(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) {
		c.SourceAddress = authserver.ForwardedFor
		c.Registration.PerSource = 2
	})
	created := 0
	for i := range 40 {
		if r := registerFrom(t, e, fmt.Sprintf("2001:db8:7:%x::1", i)); r.Status == http.StatusCreated {
			created++
		}
	}
	if want := 2 * ratelimit.AggregateFactor; created != want {
		t.Fatalf("%d registrations from 40 /64s of one /48, want the aggregate's %d", created, want)
	}
	if r := registerFrom(t, e, "2001:db8:8:1::1"); r.Status != http.StatusCreated {
		t.Fatalf("another /48: %d %s", r.Status, r.Body)
	}
}

// The review filled the global cap of registered clients from one /64 and
// every later registration got 503. The cap holds per source: a network
// that has used its share is refused, everyone else still registers.
func TestAttack_DCRCapFilledByOneNetwork(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) {
		c.SourceAddress = authserver.ForwardedFor
		c.Registration.PerSource = 1000 // the rate is not what is tested
		c.Registration.HeldPerSource = 5
	})
	created := 0
	for i := range 20 {
		if r := registerFrom(t, e, fmt.Sprintf("2001:db8:7:1::%x", i+1)); r.Status == http.StatusCreated {
			created++
		}
	}
	if created != 5 {
		t.Fatalf("one /64 registered %d clients, want its cap of 5", created)
	}
	if r := registerFrom(t, e, "198.51.100.4"); r.Status != http.StatusCreated {
		t.Fatalf("another source after one network used its cap: %d %s", r.Status, r.Body)
	}
}

// The review sent 11 token requests naming a client with a wrong secret;
// the 11th answered 429 and the real client, with its real secret, was
// locked out. Only an authenticated client spends its client's budget.
func TestAttack_TokenWrongSecretLocksClientOut(t *testing.T) {
	lim := ratelimit.New(ratelimit.Limit{PerMinute: 30, Burst: 10}, nil)
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.TokenClientLimiter = lim })
	c := e.ConfidentialClient()
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}
	for range 11 {
		testserver.WantOAuthError(t, e.PostForm(authserver.TokenPath, f, c.ID, "wrong"), http.StatusUnauthorized, "invalid_client")
	}
	// The real client authenticates and is answered on the grant.
	testserver.WantOAuthError(t, e.PostForm(authserver.TokenPath, f, c.ID, c.Secret), http.StatusBadRequest, "invalid_grant")
	// Its own budget still holds once it has authenticated.
	for range 9 {
		e.PostForm(authserver.TokenPath, f, c.ID, c.Secret)
	}
	r := e.PostForm(authserver.TokenPath, f, c.ID, c.Secret)
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "this client") {
		t.Fatalf("an authenticated client past its budget: %d %s", r.Status, r.Body)
	}
}

// TestLimits_NewGrantsGoThroughTheClientBudget: the client credentials
// grant, like every grant, counts against the client's token-endpoint
// budget once the client has authenticated, so a machine client cannot
// mint tokens without end.
func TestLimits_NewGrantsGoThroughTheClientBudget(t *testing.T) {
	lim := ratelimit.New(ratelimit.Limit{PerMinute: 30, Burst: 10}, nil)
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.TokenClientLimiter = lim })
	c, secret := machineClient(e, "entries:read", "")
	for i := range 10 {
		if r := clientCredentials(e, c.ID, secret, nil); r.Status != http.StatusOK {
			t.Fatalf("token %d within the budget: %d %s", i+1, r.Status, r.Body)
		}
	}
	r := clientCredentials(e, c.ID, secret, nil)
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "this client") {
		t.Fatalf("a machine client past its budget: %d %s", r.Status, r.Body)
	}
}
