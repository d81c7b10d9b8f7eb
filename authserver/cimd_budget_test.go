package authserver_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
	"github.com/epicme/epicme/internal/testenv"
)

func revokeAs(t *testing.T, e *testserver.Env, clientID, xff string) testserver.Reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.Issuer+authserver.RevocationPath,
		strings.NewReader(url.Values{"token": {"x"}, "client_id": {clientID}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	return testserver.Do(t, nil, req)
}

// The review revoked with 100 fresh https client ids from one address and
// the server fetched 100 documents. Every path that resolves a client id
// shares one fetcher with a per-source budget.
func TestAttack_CIMDRevokeFlood(t *testing.T) {
	d := newDocServer(t)
	d.res.answers["client.example.com"] = [][]netip.Addr{{publicIP}}
	e := testserver.NewEnv(t, func(c *authserver.Config) {
		c.AllowSignUp = true
		c.MetadataDocuments = d.options()
		c.MetadataDocuments.PerSource = authserver.DefaultMetadataFetchesPerSource
		c.SourceAddress = authserver.ForwardedFor
	})
	for i := range 100 {
		revokeAs(t, e, fmt.Sprintf("https://client.example.com/r%d.json", i), "198.51.100.7")
	}
	budget := authserver.DefaultMetadataFetchesPerSource.Burst
	if n := int(d.fetches.Load()); n > budget {
		t.Fatalf("100 revocations from one address fetched %d documents, want at most the source's %d", n, budget)
	}
	// Introspection refuses such clients before any fetch, and sign-up's
	// ?request= and the authorization page draw on the same budget.
	before := d.fetches.Load()
	req, _ := http.NewRequest(http.MethodPost, e.Issuer+authserver.IntrospectionPath,
		strings.NewReader(url.Values{"token": {"x"}, "client_id": {"https://client.example.com/i.json"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	testserver.WantOAuthError(t, testserver.Do(t, nil, req), http.StatusUnauthorized, "invalid_client")
	_, ch := testserver.PKCE()
	for _, u := range []string{
		e.AuthzURL(testserver.Client{ID: "https://client.example.com/a.json", Redirect: "http://127.0.0.1:7777/cb"}, ch, nil),
		e.Issuer + authserver.SignUpPath + "?request=" + url.QueryEscape("client_id=https://client.example.com/s.json&response_type=code"),
	} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("X-Forwarded-For", "198.51.100.7")
		if r := testserver.Do(t, nil, req); !strings.Contains(r.Body, "too many client metadata documents") {
			t.Fatalf("%s past the budget: %d %s", u, r.Status, r.Body)
		}
	}
	if n := d.fetches.Load(); n != before {
		t.Fatalf("%d more fetches after the budget was spent", n-before)
	}
	// Another source still has its budget.
	revokeAs(t, e, "https://client.example.com/other.json", "203.0.113.50")
	if d.fetches.Load() != before+1 {
		t.Fatal("another source could not fetch")
	}
}

// A document that failed is not fetched again at once, and a no-store
// document is kept for a short minimum, so neither forces a fetch on
// every request.
func TestAttack_CIMDNoStoreAndFailuresRefetched(t *testing.T) {
	d := newDocServer(t)
	d.res.answers["client.example.com"] = [][]netip.Addr{{publicIP}}
	id := "https://client.example.com/c.json"
	d.serveJSON("/c.json", cimdDoc(id), "no-store")
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.MetadataDocuments = d.options() })
	for range 10 {
		revokeAs(t, e, id, "")
		revokeAs(t, e, "https://client.example.com/missing.json", "")
	}
	if n := d.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches for 20 uses of a no-store and a missing document, want 2", n)
	}
	wantRefusedPage(t, cimdPage(e, "https://client.example.com/missing.json"), "HTTP 404")
}

// The review had 30 slow documents fetched at once; fetches in flight are
// capped and the rest refused at once instead of queueing.
func TestAttack_CIMDSlowDocumentsConcurrent(t *testing.T) {
	d := newDocServer(t)
	d.res.answers["slow.example.com"] = [][]netip.Addr{{publicIP}}
	release := make(chan struct{})
	var inFlight, most atomic.Int32
	d.mu.Lock()
	for i := range 30 {
		d.docs[fmt.Sprintf("/s%d.json", i)] = func(w http.ResponseWriter, r *http.Request) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}
	d.mu.Unlock()
	e := testserver.NewEnv(t, func(c *authserver.Config) {
		c.MetadataDocuments = d.options()
		c.MetadataDocuments.Timeout = 3 * time.Second
		c.SourceAddress = authserver.ForwardedFor
	})
	var wg sync.WaitGroup
	var refused atomic.Int32
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each from its own address: no source budget is in the way.
			r := revokeAs(t, e, fmt.Sprintf("https://slow.example.com/s%d.json", i), fmt.Sprintf("198.51.100.%d", i+1))
			if r.Status == http.StatusUnauthorized {
				refused.Add(1)
			}
		}()
	}
	// Every request beyond the cap is answered without waiting; release
	// the ones in flight once the others are.
	testenv.Eventually(t, 30*time.Second, func() error {
		if n, want := refused.Load(), int32(30-authserver.DefaultMetadataFetchesAtOnce); n < want {
			return fmt.Errorf("%d requests beyond the cap refused, want %d", n, want)
		}
		return nil
	})
	close(release)
	wg.Wait()
	if m := int(most.Load()); m > authserver.DefaultMetadataFetchesAtOnce {
		t.Fatalf("%d documents fetched at once, want at most %d", m, authserver.DefaultMetadataFetchesAtOnce)
	}
}
