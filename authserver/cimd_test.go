package authserver_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
	"github.com/epicme/epicme/ratelimit"
)

// publicIP stands for an address on the internet. The test dialer maps it
// to the loopback document server, so the address checks see a public
// address while nothing but loopback is ever dialled.
var publicIP = netip.MustParseAddr("203.0.113.7")

// stubResolver answers from a table; a host with several answers gives
// them in turn, one per lookup (DNS rebinding).
type stubResolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	lookups map[string]int
}

func (r *stubResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := r.answers[host]
	if len(seq) == 0 {
		return nil, fmt.Errorf("no such host %s", host)
	}
	i := min(r.lookups[host], len(seq)-1)
	r.lookups[host]++
	return seq[i], nil
}

// docServer serves metadata documents over TLS on loopback.
type docServer struct {
	ts      *httptest.Server
	mu      sync.Mutex
	docs    map[string]func(w http.ResponseWriter, r *http.Request)
	fetches atomic.Int32
	dialled []string // addresses the fetcher asked to dial
	res     *stubResolver
}

func newDocServer(t *testing.T) *docServer {
	d := &docServer{docs: map[string]func(http.ResponseWriter, *http.Request){}}
	d.res = &stubResolver{answers: map[string][][]netip.Addr{}, lookups: map[string]int{}}
	d.ts = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.fetches.Add(1)
		d.mu.Lock()
		h := d.docs[r.URL.Path]
		d.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	t.Cleanup(d.ts.Close)
	return d
}

func (d *docServer) serveJSON(path string, doc any, cacheControl string) {
	b, _ := json.Marshal(doc)
	d.mu.Lock()
	d.docs[path] = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		w.Write(b)
	}
	d.mu.Unlock()
}

func (d *docServer) redirect(path, to string) {
	d.mu.Lock()
	d.docs[path] = func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusFound) }
	d.mu.Unlock()
}

// options are the metadata-document options of a server that reaches this
// document server as if it were on the internet.
func (d *docServer) options() authserver.MetadataDocumentOptions {
	pool := x509.NewCertPool()
	pool.AddCert(d.ts.Certificate())
	return authserver.MetadataDocumentOptions{
		Resolver: d.res,
		RootCAs:  pool,
		// Every test request comes from loopback: the budgets have their
		// own tests (TestAttack_CIMDRevokeFlood).
		PerSource: ratelimit.Limit{PerMinute: 1000, Burst: 1000},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d.mu.Lock()
			d.dialled = append(d.dialled, addr)
			d.mu.Unlock()
			ap, err := netip.ParseAddrPort(addr)
			if err != nil || ap.Addr() != publicIP {
				return nil, fmt.Errorf("test dialer: %s is not mapped", addr)
			}
			var dl net.Dialer
			return dl.DialContext(ctx, network, d.ts.Listener.Addr().String())
		},
	}
}

func (d *docServer) dials() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.dialled...)
}

func cimdDoc(id string) map[string]any {
	return map[string]any{
		"client_id":                  id,
		"client_name":                "Doc Client",
		"redirect_uris":              []string{"http://127.0.0.1:7777/cb"},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_method": "none",
	}
}

// cimdPage asks the authorization endpoint to use a metadata document
// client and returns the response.
func cimdPage(e *testserver.Env, id string) testserver.Reply {
	_, ch := testserver.PKCE()
	return e.Agent().Get(e.AuthzURL(testserver.Client{ID: id, Redirect: "http://127.0.0.1:7777/cb"}, ch, nil))
}

func wantRefusedPage(t *testing.T, r testserver.Reply, reason string) {
	t.Helper()
	if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" || !strings.Contains(r.Body, reason) {
		t.Fatalf("want an error page saying %q, got %d:\n%s", reason, r.Status, r.Body)
	}
}

func TestRule_CIMDClientCompletesFlow(t *testing.T) {
	d := newDocServer(t)
	d.res.answers["client.example.com"] = [][]netip.Addr{{publicIP}}
	id := "https://client.example.com/oauth/client.json"
	d.serveJSON("/oauth/client.json", cimdDoc(id), "max-age=300")
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.MetadataDocuments = d.options() })
	c := testserver.Client{ID: id, Redirect: "http://127.0.0.1:7777/cb"}
	v, ch := testserver.PKCE()
	b := e.Agent()
	page := b.SignIn(b.Get(e.AuthzURL(c, ch, nil)).Body, testserver.Email, testserver.Password)
	if !strings.Contains(page.Body, "Doc Client") || !strings.Contains(page.Body, "client.example.com") {
		t.Fatalf("consent must name the client and the document's host:\n%s", page.Body)
	}
	q := testserver.Location(t, b.Consent(page.Body), c.Redirect)
	r := e.Exchange(c, q.Get("code"), v, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("token: %d %s", r.Status, r.Body)
	}
	if err := e.Verify(r.JSON(t)["access_token"].(string)); err != nil {
		t.Fatal(err)
	}
	// max-age=300: the document was fetched once for the whole flow.
	if n := d.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 (cached for max-age)", n)
	}
	// Only the checked public address was ever dialled.
	for _, a := range d.dials() {
		if !strings.HasPrefix(a, publicIP.String()+":") {
			t.Fatalf("dialled %s", a)
		}
	}
}

func TestRule_CIMDPrivateAddressRefused(t *testing.T) {
	d := newDocServer(t)
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.MetadataDocuments = d.options() })
	for host, addr := range map[string]string{
		"private.example.com":   "10.0.0.5",
		"metadata.example.com":  "169.254.169.254",
		"loop6.example.com":     "::1",
		"loop4.example.com":     "127.0.0.1",
		"zero.example.com":      "0.0.0.0",
		"mapped.example.com":    "::ffff:127.0.0.1",
		"cgnat.example.com":     "100.64.1.1",
		"multicast.example.com": "224.0.0.1",
	} {
		d.res.answers[host] = [][]netip.Addr{{netip.MustParseAddr(addr)}}
		wantRefusedPage(t, cimdPage(e, "https://"+host+"/client.json"), "not a public address")
	}
	for _, id := range []string{"https://127.0.0.1/client.json", "https://[::1]/client.json", "https://localhost/client.json", "https://10.1.2.3/c.json"} {
		wantRefusedPage(t, cimdPage(e, id), "metadata document")
	}
	if dl := d.dials(); len(dl) != 0 {
		t.Fatalf("refused addresses were dialled: %v", dl)
	}

	// A redirect to a loopback name or private address is refused too.
	d.res.answers["public.example.com"] = [][]netip.Addr{{publicIP}}
	d.res.answers["internal.example.com"] = [][]netip.Addr{{netip.MustParseAddr("192.168.1.1")}}
	d.redirect("/to-localhost", "https://localhost/client.json")
	d.redirect("/to-internal", "https://internal.example.com/client.json")
	d.redirect("/to-http", "http://public.example.com/client.json")
	wantRefusedPage(t, cimdPage(e, "https://public.example.com/to-localhost"), "loopback")
	wantRefusedPage(t, cimdPage(e, "https://public.example.com/to-internal"), "not a public address")
	wantRefusedPage(t, cimdPage(e, "https://public.example.com/to-http"), "non-https")

	// DNS rebinding: the name is public at the first lookup and loopback
	// at the next; the redirect's new connection resolves again and is
	// refused.
	d.res.answers["rebind.example.com"] = [][]netip.Addr{{publicIP}, {netip.MustParseAddr("127.0.0.1")}}
	d.redirect("/hop", "https://rebind.example.com/client.json")
	d.serveJSON("/client.json", cimdDoc("https://rebind.example.com/client.json"), "")
	wantRefusedPage(t, cimdPage(e, "https://rebind.example.com/hop"), "not a public address")
	for _, a := range d.dials() {
		if !strings.HasPrefix(a, publicIP.String()+":") {
			t.Fatalf("dialled %s", a)
		}
	}
}

func TestRule_CIMDPrivateAddressAllowedOnlyWithDevelopmentFlag(t *testing.T) {
	d := newDocServer(t)
	pool := x509.NewCertPool()
	pool.AddCert(d.ts.Certificate())
	id := d.ts.URL + "/client.json" // https://127.0.0.1:port
	d.serveJSON("/client.json", cimdDoc(id), "")
	strict := testserver.NewEnv(t, func(c *authserver.Config) { c.MetadataDocuments = authserver.MetadataDocumentOptions{RootCAs: pool} })
	wantRefusedPage(t, cimdPage(strict, id), "not public")
	dev := testserver.NewEnv(t, func(c *authserver.Config) {
		c.MetadataDocuments = authserver.MetadataDocumentOptions{RootCAs: pool, AllowPrivateAddresses: true}
	})
	if r := cimdPage(dev, id); r.Status != http.StatusOK || !strings.Contains(r.Body, "Doc Client") {
		t.Fatalf("with the development flag: %d %s", r.Status, r.Body)
	}
}

func TestRule_CIMDDocumentRules(t *testing.T) {
	d := newDocServer(t)
	d.res.answers["docs.example.com"] = [][]netip.Addr{{publicIP}}
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.MetadataDocuments = d.options() })
	base := "https://docs.example.com"
	withSecret := cimdDoc(base + "/secret.json")
	withSecret["client_secret"] = "s3cret"
	basic := cimdDoc(base + "/basic.json")
	basic["token_endpoint_auth_method"] = "client_secret_basic"
	big := cimdDoc(base + "/big.json")
	big["client_name"] = strings.Repeat("x", 6000)
	noRedirects := cimdDoc(base + "/noredirects.json")
	delete(noRedirects, "redirect_uris")
	d.serveJSON("/mismatch.json", cimdDoc(base+"/other.json"), "")
	d.serveJSON("/secret.json", withSecret, "")
	d.serveJSON("/basic.json", basic, "")
	d.serveJSON("/big.json", big, "")
	d.serveJSON("/noredirects.json", noRedirects, "")
	for path, reason := range map[string]string{
		"/mismatch.json":    "does not equal its URL",
		"/secret.json":      "client secret",
		"/basic.json":       "must be none",
		"/big.json":         "larger than 5120 bytes",
		"/noredirects.json": "redirect_uris",
		"/missing.json":     "HTTP 404",
		"/":                 "must have a path",
		"/a/../b.json":      "dot segments",
	} {
		wantRefusedPage(t, cimdPage(e, base+path), reason)
	}
	// A redirect URI the document does not list is shown, not redirected.
	d.serveJSON("/ok.json", cimdDoc(base+"/ok.json"), "no-store")
	_, ch := testserver.PKCE()
	r := e.Agent().Get(e.AuthzURL(testserver.Client{ID: base + "/ok.json", Redirect: "https://evil.example/cb"}, ch, nil))
	wantRefusedPage(t, r, "redirect_uri is not registered")
	// no-store: kept for the minimum age all the same (more in
	// TestAttack_CIMDNoStoreAndFailuresRefetched).
	before := d.fetches.Load()
	cimdPage(e, base+"/ok.json")
	cimdPage(e, base+"/ok.json")
	if n := d.fetches.Load() - before; n != 0 {
		t.Fatalf("%d fetches with no-store within the minimum age, want 0", n)
	}
	// A metadata-document client has no secret to present.
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}
	testserver.WantOAuthError(t, e.PostForm(authserver.TokenPath, f, base+"/ok.json", "guess"), http.StatusUnauthorized, "invalid_client")
}
