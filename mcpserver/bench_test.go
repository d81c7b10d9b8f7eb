package mcpserver

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/mcp"
)

// BenchmarkGetEntryHTTP measures get_entry end to end: a 2026-07-28
// stateless JSON POST over loopback HTTP to the adapter and a SQLite file,
// from 8 concurrent clients, with a development-mode caller resolver. The
// target is 15,000 calls/s on a 2-core machine.
//
//	go test ./mcpserver -run '^$' -bench GetEntryHTTP -benchtime 5s
func BenchmarkGetEntryHTTP(b *testing.B) {
	srv, body, header := benchSetup(b)
	ts := httptest.NewServer(srv.HTTPHandler())
	defer ts.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}

	doCall := func(buf *bytes.Buffer) error {
		req, _ := http.NewRequest(http.MethodPost, ts.URL, bytes.NewReader(body))
		req.Header = header.Clone()
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		buf.Reset()
		_, err = io.Copy(buf, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !bytes.Contains(buf.Bytes(), []byte(`"structuredContent"`)) {
			b.Fatalf("status %d: %s", resp.StatusCode, buf.Bytes())
		}
		return nil
	}
	var warm bytes.Buffer
	if err := doCall(&warm); err != nil {
		b.Fatal(err)
	}

	b.SetParallelism(4) // 4 × GOMAXPROCS(2) = 8 clients
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var buf bytes.Buffer
		for pb.Next() {
			if err := doCall(&buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// BenchmarkGetEntryHandler is the server side of BenchmarkGetEntryHTTP
// alone: the same request handed to the http.Handler in process, without
// sockets or an HTTP client, to tell the adapter's cost from the network's.
func BenchmarkGetEntryHandler(b *testing.B) {
	srv, body, header := benchSetup(b)
	h := srv.HTTPHandler()
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(body))
			req.Header = header.Clone()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// benchSetup makes a journal of 100 entries and returns the adapter, a
// 2026-07-28 tools/call get_entry body and its headers.
func benchSetup(b *testing.B) (*Server, []byte, http.Header) {
	db, alice, _ := openTestStore(b)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if _, err := db.CreateEntry(ctx, alice.ID, epicme.NewEntry{
			Title: "Entry", Content: strings.Repeat("Some words about the day. ", 20), IsPrivate: true,
		}); err != nil {
			b.Fatal(err)
		}
	}
	caller := &epicme.Caller{User: alice, Scopes: epicme.AllScopes}
	dev := epicme.CallerResolverFunc(func(context.Context) (*epicme.Caller, error) { return caller, nil })
	srv, err := New(db, dev, Options{Logger: quietLogger(), Secret: testSecret})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	body := []byte(mustJSON(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": map[string]any{
		"name": "get_entry", "arguments": map[string]any{"id": 42},
		"_meta": map[string]any{mcp.MetaKeyProtocolVersion: v20260728, mcp.MetaKeyClientCapabilities: map[string]any{}},
	}}))
	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("Accept", "application/json, text/event-stream")
	header.Set(mcp.HeaderProtocolVersion, v20260728)
	header.Set(mcp.HeaderMethod, "tools/call")
	header.Set(mcp.HeaderName, "get_entry")
	return srv, body, header
}
