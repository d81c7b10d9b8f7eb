package authserver_test

import (
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/epicme/epicme/authserver"
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
	e := newEnv(b)
	c := e.publicClient()
	const families = 32
	tokens := make(chan string, families)
	for range families {
		tokens <- e.tokens(c)["refresh_token"].(string)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	cpu := cpuClock()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		rt := <-tokens
		defer func() { tokens <- rt }()
		for pb.Next() {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.id}}
			resp, err := client.PostForm(e.issuer+authserver.TokenPath, form)
			if err != nil {
				b.Error(err)
				return
			}
			r := readReply(b, resp)
			if r.status != http.StatusOK {
				b.Errorf("refresh: %d %s", r.status, r.body)
				return
			}
			rt = r.json(b)["refresh_token"].(string)
		}
	})
	report(b, cpu)
}

// BenchmarkIntrospection: a resource server introspecting access tokens.
func BenchmarkIntrospection(b *testing.B) {
	e := newEnv(b)
	c := e.publicClient()
	var ats []string
	for range 8 {
		ats = append(ats, e.tokens(c)["access_token"].(string))
	}
	rs := e.resourceServerClient(e.resource)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	cpu := cpuClock()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			req, _ := http.NewRequest(http.MethodPost, e.issuer+authserver.IntrospectionPath, strings.NewReader(url.Values{"token": {ats[i%len(ats)]}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(rs.id, rs.secret)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			r := readReply(b, resp)
			if r.status != http.StatusOK || !strings.Contains(r.body, `"active":true`) {
				b.Errorf("introspection: %d %s", r.status, r.body)
				return
			}
		}
	})
	report(b, cpu)
}

// BenchmarkCodeRoundTrip: a signed-in user who already consented; each
// iteration is authorize → redirect with a code → token.
func BenchmarkCodeRoundTrip(b *testing.B) {
	e := newEnv(b)
	c := e.publicClient()
	const users = 8
	browsers := make(chan *browser, users)
	for range users {
		br := e.browser()
		_, ch := pkce()
		br.authorize(c, ch, nil) // signs in and consents once
		browsers <- br
	}
	v, ch := pkce()
	authz := e.authzURL(c, ch, nil)
	b.ResetTimer()
	cpu := cpuClock()
	b.SetParallelism(2)
	b.RunParallel(func(pb *testing.PB) {
		br := <-browsers
		defer func() { browsers <- br }()
		for pb.Next() {
			r := br.get(authz)
			loc, err := url.Parse(r.header.Get("Location"))
			if r.status != http.StatusFound || err != nil {
				b.Errorf("authorize: %d", r.status)
				return
			}
			form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {c.redirect},
				"code_verifier": {v}, "client_id": {c.id}, "resource": {e.resource}}
			resp, err := br.client.PostForm(e.issuer+authserver.TokenPath, form)
			if err != nil {
				b.Error(err)
				return
			}
			if t := readReply(b, resp); t.status != http.StatusOK {
				b.Errorf("token: %d %s", t.status, t.body)
				return
			}
		}
	})
	report(b, cpu)
}
