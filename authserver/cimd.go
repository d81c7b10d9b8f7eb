package authserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/epicme/epicme/internal/lru"
	"github.com/epicme/epicme/ratelimit"
)

// MetadataDocumentOptions configure Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document): a client whose client_id
// is an https URL is described by the JSON document at that URL.
type MetadataDocumentOptions struct {
	// Disabled turns the feature off (client_id_metadata_document_supported
	// becomes false).
	Disabled bool
	// AllowPrivateAddresses lets documents be fetched from loopback,
	// private and link-local addresses. For development only: in
	// production it would let anyone make the server fetch from its own
	// network (server-side request forgery).
	AllowPrivateAddresses bool
	// Resolver resolves host names (default net.DefaultResolver).
	Resolver Resolver
	// Dial connects to an address that passed the address checks (default
	// a net.Dialer that checks the address again at connect time).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs verify the documents' servers (default the system roots).
	RootCAs *x509.CertPool
	// Timeout bounds one fetch, redirects included (default 5 seconds).
	Timeout time.Duration
	// MaxAge bounds how long a document is cached (default 24 hours);
	// DefaultAge is used when the server gives no max-age (default 5
	// minutes); MinAge is the least a document is kept, whatever its
	// Cache-Control says (default 1 minute), so that no-store cannot make
	// every request fetch; a failed fetch is remembered as long.
	MaxAge, DefaultAge, MinAge time.Duration
	// PerSource is how many documents one source (Config.Sources) may make
	// the server fetch (default DefaultMetadataFetchesPerSource), and
	// Global how many all sources together (default
	// DefaultMetadataFetchesGlobal); past them a client id that is not
	// cached is refused.
	PerSource, Global ratelimit.Limit
	// AtOnce caps the fetches in flight (default
	// DefaultMetadataFetchesAtOnce); one more is refused, not queued.
	AtOnce int
}

// Defaults of the metadata-document fetch budgets: a person's client
// needs a document or two per sign-in, cached for minutes after.
var (
	DefaultMetadataFetchesPerSource = ratelimit.Limit{PerMinute: 10, Burst: 10}
	DefaultMetadataFetchesGlobal    = ratelimit.Limit{PerMinute: 300, Burst: 60}
)

// DefaultMetadataFetchesAtOnce is the default cap of fetches in flight.
const DefaultMetadataFetchesAtOnce = 8

// Resolver resolves host names to IP addresses.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// maxMetadataDocument is the size cap of a metadata document.
const maxMetadataDocument = 5 << 10

// errMetadataDocument: a metadata document could not be fetched or is not
// acceptable. Its message is safe to show on the error page.
var errMetadataDocument = errors.New("client metadata document")

type docError struct{ reason string }

func (e *docError) Error() string        { return "client metadata document: " + e.reason }
func (e *docError) Is(target error) bool { return target == errMetadataDocument }

func docErrorf(format string, args ...any) error {
	return &docError{reason: fmt.Sprintf(format, args...)}
}

// metadataFetcher fetches and caches metadata documents. It is the one
// way any endpoint resolves an https client id, so its budgets hold for
// all of them.
type metadataFetcher struct {
	opts                 MetadataDocumentOptions
	http                 *http.Client
	perSource, aggregate *ratelimit.Limiter
	global               *ratelimit.Limiter
	slots                chan struct{}

	cache *lru.Cache[string, cachedDoc]
}

// cachedDoc is a document's client, or the error its fetch gave.
type cachedDoc struct {
	client *Client
	err    error
}

// maxCachedDocs bounds the documents (and failed fetches) remembered.
const maxCachedDocs = 1000

// fetchSource is who asks for a fetch: the keys of their source
// (ratelimit.Sources).
type fetchSource struct {
	key, aggregate string
	limited        bool
}

var errFetchBudget = docErrorf("too many client metadata documents were fetched for this network; try again in a minute")
var errFetchBusy = docErrorf("too many client metadata documents are being fetched at once; try again shortly")

func newMetadataFetcher(opts MetadataDocumentOptions) *metadataFetcher {
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = 24 * time.Hour
	}
	if opts.DefaultAge == 0 {
		opts.DefaultAge = 5 * time.Minute
	}
	if opts.MinAge == 0 {
		opts.MinAge = time.Minute
	}
	if opts.PerSource == (ratelimit.Limit{}) {
		opts.PerSource = DefaultMetadataFetchesPerSource
	}
	if opts.Global == (ratelimit.Limit{}) {
		opts.Global = DefaultMetadataFetchesGlobal
	}
	if opts.AtOnce <= 0 {
		opts.AtOnce = DefaultMetadataFetchesAtOnce
	}
	f := &metadataFetcher{
		opts: opts, cache: lru.New[string, cachedDoc](maxCachedDocs),
		perSource: ratelimit.New(opts.PerSource, nil),
		aggregate: ratelimit.New(ratelimit.Aggregate(opts.PerSource), nil),
		global:    ratelimit.New(opts.Global, nil),
		slots:     make(chan struct{}, opts.AtOnce),
	}
	dial := opts.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: opts.Timeout, Control: f.control}
		dial = d.DialContext
	}
	tr := &http.Transport{
		Proxy: nil, // a proxy would resolve names we never checked
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return f.dialChecked(ctx, network, addr, dial)
		},
		TLSClientConfig:        &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    opts.Timeout,
		ResponseHeaderTimeout:  opts.Timeout,
		MaxResponseHeaderBytes: 16 << 10,
		DisableKeepAlives:      true, // every fetch resolves and checks again
		ForceAttemptHTTP2:      false,
	}
	f.http = &http.Client{
		Transport: tr,
		Timeout:   opts.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return docErrorf("too many redirects")
			}
			if req.URL.Scheme != "https" {
				return docErrorf("redirect to a non-https URL")
			}
			return f.checkHostLiteral(req.URL.Hostname())
		},
	}
	return f
}

// blockedAddr reports whether addr is one a metadata fetch must never reach
// unless private addresses are allowed: loopback, private (RFC 1918, RFC
// 4193), link-local (cloud metadata services live there), unspecified,
// multicast, and the shared, documentation-free special ranges.
func blockedAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),     // "this network"
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),   // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),  // NAT64 can reach any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2002::/16"),     // 6to4 embeds IPv4 addresses
	netip.MustParsePrefix("::/96"),         // IPv4-compatible (RFC 4291 §2.5.5.1), ::127.0.0.1
	netip.MustParsePrefix("2001::/32"),     // Teredo embeds an IPv4 server and client (RFC 4380)
	netip.MustParsePrefix("2001:db8::/32"), // documentation (RFC 3849), never routed
	netip.MustParsePrefix("100::/64"),      // discard-only (RFC 6666)
}

func (f *metadataFetcher) allowed(a netip.Addr) bool {
	return f.opts.AllowPrivateAddresses || !blockedAddr(a)
}

// checkHostLiteral refuses URLs whose host is a blocked IP literal or
// "localhost", before any connection is tried.
func (f *metadataFetcher) checkHostLiteral(host string) error {
	if f.opts.AllowPrivateAddresses {
		return nil
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return docErrorf("the document's host is a loopback name")
	}
	if a, err := netip.ParseAddr(host); err == nil && blockedAddr(a) {
		return docErrorf("the document's address %s is not public", a)
	}
	return nil
}

// dialChecked resolves the host itself, refuses blocked addresses, and
// connects to the checked address (not the name), so that a second DNS
// answer cannot redirect the connection (DNS rebinding).
func (f *metadataFetcher) dialChecked(ctx context.Context, network, addr string, dial func(context.Context, string, string) (net.Conn, error)) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		if addrs, err = f.opts.Resolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, docErrorf("cannot resolve %s", host)
		}
	}
	var lastErr error = docErrorf("%s has no address", host)
	for _, a := range addrs {
		if !f.allowed(a) {
			lastErr = docErrorf("%s resolves to %s, which is not a public address", host, a.Unmap())
			continue
		}
		conn, err := dial(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return conn, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// control checks the address a socket is about to connect to: the last
// line of defence should anything upstream pass a name instead of a
// checked address.
func (f *metadataFetcher) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return docErrorf("unexpected dial address")
	}
	if !f.allowed(ap.Addr()) {
		return docErrorf("refusing to connect to %s", ap.Addr())
	}
	return nil
}

// checkClientIDURL applies the draft's rules for a client_id URL (§3): https,
// a path, no fragment, no credentials, no dot segments.
func checkClientIDURL(id string) error {
	u, err := url.Parse(id)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return docErrorf("client_id must be an https URL")
	}
	if u.Path == "" || u.Path == "/" {
		return docErrorf("client_id URL must have a path")
	}
	if u.Fragment != "" || u.User != nil || strings.Contains(id, "#") {
		return docErrorf("client_id URL must not have a fragment or credentials")
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return docErrorf("client_id URL must not have dot segments")
		}
	}
	return nil
}

// metadataDocument is the part of a client metadata document we use (RFC
// 7591 §2 names).
type metadataDocument struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	LogoURI                 string   `json:"logo_uri"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope"`
	ClientSecret            string   `json:"client_secret"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at"`
}

// client returns the client the document at id describes, from the cache
// when fresh. A fetch is charged to src's budget and the global one, and
// takes one of the slots of fetches in flight; with none left it is
// refused rather than queued. A failure is cached as a document is.
func (f *metadataFetcher) client(ctx context.Context, src fetchSource, id string) (*Client, error) {
	now := time.Now()
	if c, ok := f.cache.Get(id, now); ok {
		return c.client, c.err
	}
	if err := checkClientIDURL(id); err != nil {
		return nil, err
	}
	if src.limited {
		if ok, _ := f.perSource.Allow(src.key); !ok {
			return nil, errFetchBudget
		}
		if src.aggregate != "" {
			if ok, _ := f.aggregate.Allow(src.aggregate); !ok {
				return nil, errFetchBudget
			}
		}
	}
	if ok, _ := f.global.Allow(""); !ok {
		return nil, errFetchBudget
	}
	select {
	case f.slots <- struct{}{}:
	default:
		return nil, errFetchBusy
	}
	c, ttl, err := f.fetch(ctx, id)
	<-f.slots
	if err != nil {
		if !errors.Is(err, errMetadataDocument) || ctx.Err() != nil {
			return nil, err // not the document's fault: not remembered
		}
		ttl = f.opts.MinAge
	}
	f.cache.Put(id, cachedDoc{client: c, err: err}, now.Add(max(ttl, f.opts.MinAge)))
	return c, err
}

func (f *metadataFetcher) fetch(ctx context.Context, id string) (*Client, time.Duration, error) {
	u, _ := url.Parse(id)
	if err := f.checkHostLiteral(u.Hostname()); err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, 0, docErrorf("bad client_id URL")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.http.Do(req)
	if err != nil {
		var de *docError
		if errors.As(err, &de) {
			return nil, 0, de
		}
		return nil, 0, docErrorf("fetching %s failed", u.Host)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, docErrorf("fetching the document answered HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataDocument+1))
	if err != nil {
		return nil, 0, docErrorf("reading the document failed")
	}
	if len(body) > maxMetadataDocument {
		return nil, 0, docErrorf("the document is larger than %d bytes", maxMetadataDocument)
	}
	c, err := parseMetadataDocument(id, body)
	if err != nil {
		return nil, 0, err
	}
	return c, f.cacheTTL(resp.Header.Get("Cache-Control")), nil
}

// parseMetadataDocument checks a fetched Client ID Metadata Document
// (draft-ietf-oauth-client-id-metadata-document §4) against the URL it
// came from and returns the client it describes.
func parseMetadataDocument(id string, body []byte) (*Client, error) {
	var doc metadataDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, docErrorf("the document is not JSON client metadata")
	}
	if doc.ClientID != id {
		return nil, docErrorf("the document's client_id does not equal its URL")
	}
	// The draft (§4.1) forbids shared secrets: anyone can read the document.
	if doc.ClientSecret != "" || doc.ClientSecretExpiresAt != nil {
		return nil, docErrorf("the document must not contain a client secret")
	}
	switch doc.TokenEndpointAuthMethod {
	case "", AuthNone:
	default:
		return nil, docErrorf("token_endpoint_auth_method must be none")
	}
	m := registrationRequest{
		RedirectURIs:            doc.RedirectURIs,
		TokenEndpointAuthMethod: AuthNone,
		GrantTypes:              doc.GrantTypes,
		ResponseTypes:           doc.ResponseTypes,
		ClientName:              doc.ClientName,
		ClientURI:               doc.ClientURI,
		LogoURI:                 doc.LogoURI,
	}
	if e := m.validate(nil); e != nil {
		return nil, docErrorf("%s", e.Description)
	}
	c := &Client{
		ID:           id,
		Kind:         ClientMetadataDoc,
		Name:         m.ClientName,
		RedirectURIs: m.RedirectURIs,
		AuthMethod:   AuthNone,
		GrantTypes:   m.GrantTypes,
		ClientURI:    m.ClientURI,
		LogoURI:      m.LogoURI,
		Scope:        doc.Scope,
	}
	return c, nil
}

// cacheTTL reads max-age from Cache-Control (RFC 9111 §5.2.2.1); no-store
// and no-cache mean the least time (client keeps a document MinAge
// whatever it says: the document serves no user's private data, and
// honouring no-store would let anyone make the server fetch on every
// request).
func (f *metadataFetcher) cacheTTL(cc string) time.Duration {
	ttl := f.opts.DefaultAge
	for _, d := range strings.Split(cc, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "no-store" || d == "no-cache":
			return 0
		case strings.HasPrefix(d, "max-age="):
			n, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(d, "max-age="), `"`))
			if err == nil && n >= 0 {
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	return min(ttl, f.opts.MaxAge)
}
