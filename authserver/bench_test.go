package authserver_test

import (
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
)

// Benchmarks of the authorization server over real HTTP on loopback with a
// SQLite file. Each reports req/s, the figure the README records:
//
//	go test ./authserver -run '^$' -bench . -benchtime 3s
//
// On a shared machine req/s depends on what else runs, so each also reports
// cpu-us/op: the CPU time of client and server together (both run in this
// process) per request, whatever the contention. 2e6 / cpu-us/op is the
// rate two free cores could sustain, the client's share included.

// cpuClock measures the process's CPU time (user + system).
func cpuClock() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func report(b *testing.B, cpuStart time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64((cpuClock()-cpuStart).Microseconds())/float64(b.N), "cpu-us/op")
}

// BenchmarkRefreshGrant: refresh_token grants (rotation, a new JWT, the
// access-token record), each client refreshing its own family.
func BenchmarkRefreshGrant(b *testing.B) {
	e := testserver.NewEnv(b)
	c := e.PublicClient()
	const families = 32
	tokens := make(chan string, families)
	for range families {
		tokens <- e.Tokens(c)["refresh_token"].(string)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	cpu := cpuClock()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		rt := <-tokens
		defer func() { tokens <- rt }()
		for pb.Next() {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.ID}}
			resp, err := client.PostForm(e.Issuer+authserver.TokenPath, form)
			if err != nil {
				b.Error(err)
				return
			}
			r := testserver.ReadReply(resp)
			if r.Status != http.StatusOK {
				b.Errorf("refresh: %d %s", r.Status, r.Body)
				return
			}
			rt = r.JSON(b)["refresh_token"].(string)
		}
	})
	report(b, cpu)
}

// BenchmarkIntrospection: a resource server introspecting access tokens.
func BenchmarkIntrospection(b *testing.B) {
	e := testserver.NewEnv(b)
	c := e.PublicClient()
	var ats []string
	for range 8 {
		ats = append(ats, e.Tokens(c)["access_token"].(string))
	}
	rs := resourceServerClient(e, e.Resource)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	cpu := cpuClock()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			req, _ := http.NewRequest(http.MethodPost, e.Issuer+authserver.IntrospectionPath, strings.NewReader(url.Values{"token": {ats[i%len(ats)]}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(rs.ID, rs.Secret)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			r := testserver.ReadReply(resp)
			if r.Status != http.StatusOK || !strings.Contains(r.Body, `"active":true`) {
				b.Errorf("introspection: %d %s", r.Status, r.Body)
				return
			}
		}
	})
	report(b, cpu)
}

// BenchmarkCodeRoundTrip: a signed-in user who already consented; each
// iteration is authorize → redirect with a code → token.
func BenchmarkCodeRoundTrip(b *testing.B) {
	e := testserver.NewEnv(b)
	c := e.PublicClient()
	const users = 8
	browsers := make(chan *testserver.Agent, users)
	for range users {
		br := e.Agent()
		_, ch := testserver.PKCE()
		br.Authorize(c, ch, nil) // signs in and consents once
		browsers <- br
	}
	v, ch := testserver.PKCE()
	authz := e.AuthzURL(c, ch, nil)
	b.ResetTimer()
	cpu := cpuClock()
	b.SetParallelism(2)
	b.RunParallel(func(pb *testing.PB) {
		br := <-browsers
		defer func() { browsers <- br }()
		for pb.Next() {
			r := br.Get(authz)
			loc, err := url.Parse(r.Header.Get("Location"))
			if r.Status != http.StatusFound || err != nil {
				b.Errorf("authorize: %d", r.Status)
				return
			}
			form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {c.Redirect},
				"code_verifier": {v}, "client_id": {c.ID}, "resource": {e.Resource}}
			resp, err := br.Client.PostForm(e.Issuer+authserver.TokenPath, form)
			if err != nil {
				b.Error(err)
				return
			}
			if t := testserver.ReadReply(resp); t.Status != http.StatusOK {
				b.Errorf("token: %d %s", t.Status, t.Body)
				return
			}
		}
	})
	report(b, cpu)
}
