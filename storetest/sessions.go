package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme"
)

// testSessions is the contract of epicme.SessionStore: MCP sessions of
// protocol revisions 2025-03-26..2025-11-25, stored so that any instance
// serves them (MCP basic/transports, "Session Management").
func testSessions(t *testing.T, open opener) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sessions := func(t *testing.T) (epicme.Store, epicme.SessionStore) {
		t.Helper()
		s := open(t)
		ss, ok := s.(epicme.SessionStore)
		if !ok {
			t.Fatalf("%T does not implement epicme.SessionStore", s)
		}
		return s, ss
	}
	newSession := func(userID string) *epicme.MCPSession {
		return &epicme.MCPSession{
			ID:              "mcp-session-" + rand.Text(),
			UserID:          userID,
			ClientID:        "https://client.example/metadata.json",
			ProtocolVersion: "2025-06-18",
			Capabilities:    []byte(`{"elicitation":{},"sampling":{}}`),
			CreatedAt:       t0,
		}
	}

	t.Run("RequestStateUsedOnce", func(t *testing.T) {
		_, ss := sessions(t)
		const state = "eyJ1IjoiYWxpY2UifQ"
		exp := t0.Add(10 * time.Minute)
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, conflicts := 0, 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := ss.UseRequestState(ctx, state, exp)
				mu.Lock()
				defer mu.Unlock()
				switch epicme.ErrorCode(err) {
				case "":
					won++
				case epicme.ECONFLICT:
					conflicts++
				default:
					t.Errorf("UseRequestState: %v", err)
				}
			}()
		}
		wg.Wait()
		if won != 1 || conflicts != 7 {
			t.Fatalf("8 concurrent uses of one state: %d succeeded, %d ECONFLICT; want 1 and 7", won, conflicts)
		}
		if err := ss.UseRequestState(ctx, state+"x", exp); err != nil {
			t.Fatalf("another state: %v", err)
		}
		if n, err := ss.DeleteExpiredRequestStates(ctx, exp.Add(-time.Second)); err != nil || n != 0 {
			t.Fatalf("DeleteExpiredRequestStates before the expiry = %d, %v; want 0", n, err)
		}
		wantCode(t, ss.UseRequestState(ctx, state, exp), epicme.ECONFLICT)
		if n, err := ss.DeleteExpiredRequestStates(ctx, exp); err != nil || n != 2 {
			t.Fatalf("DeleteExpiredRequestStates at the expiry = %d, %v; want 2", n, err)
		}
	})

	t.Run("RoundTrip", func(t *testing.T) {
		s, ss := sessions(t)
		u := newUser(t, s)
		in := newSession(u.ID)
		if err := ss.CreateSession(ctx, in); err != nil {
			t.Fatal(err)
		}
		got, err := ss.GetSession(ctx, in.ID, t0.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		want := *in
		want.LastSeen = t0
		if !reflect.DeepEqual(got, &want) {
			t.Fatalf("GetSession = %+v, want %+v", got, &want)
		}
		wantCode(t, ss.CreateSession(ctx, newSession(u.ID+"-nobody")), epicme.ENOTFOUND)
		wantCode(t, ss.CreateSession(ctx, in), epicme.ECONFLICT)
		wantCode(t, ss.CreateSession(ctx, &epicme.MCPSession{UserID: u.ID}), epicme.EINVALID)
		big := newSession(u.ID)
		big.Capabilities = make([]byte, epicme.MaxSessionCapabilities+1)
		wantCode(t, ss.CreateSession(ctx, big), epicme.EINVALID)
	})

	t.Run("UnknownSessionIsNotFound", func(t *testing.T) {
		_, ss := sessions(t)
		_, err := ss.GetSession(ctx, "mcp-session-unknown", t0)
		wantCode(t, err, epicme.ENOTFOUND)
		wantCode(t, ss.TouchSession(ctx, "mcp-session-unknown", t0), epicme.ENOTFOUND)
		if ended, err := ss.EndSession(ctx, "mcp-session-unknown"); err != nil || ended {
			t.Fatalf("EndSession of an unknown session = %v, %v", ended, err)
		}
	})

	// A session id is looked up exactly: an id that differs in case or by
	// a prefix is another session (the store keeps a hash, not the id).
	t.Run("SessionIDMatchesExactly", func(t *testing.T) {
		s, ss := sessions(t)
		in := newSession(newUser(t, s).ID)
		if err := ss.CreateSession(ctx, in); err != nil {
			t.Fatal(err)
		}
		for _, other := range []string{in.ID[:len(in.ID)-1], in.ID + "0", fmt.Sprintf("%X", in.ID), epicme.SessionKey(in.ID)} {
			_, err := ss.GetSession(ctx, other, t0)
			wantCode(t, err, epicme.ENOTFOUND)
		}
	})

	t.Run("IdleSessionIsGone", func(t *testing.T) {
		s, ss := sessions(t)
		u := newUser(t, s)
		idle, used := newSession(u.ID), newSession(u.ID)
		for _, in := range []*epicme.MCPSession{idle, used} {
			if err := ss.CreateSession(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		if err := ss.TouchSession(ctx, used.ID, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		// LastSeen never moves back.
		if err := ss.TouchSession(ctx, used.ID, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		cutoff := t0.Add(30 * time.Minute)
		_, err := ss.GetSession(ctx, idle.ID, cutoff)
		wantCode(t, err, epicme.ENOTFOUND)
		got, err := ss.GetSession(ctx, used.ID, cutoff)
		if err != nil || !got.LastSeen.Equal(t0.Add(time.Hour)) {
			t.Fatalf("GetSession of a used session = %+v, %v; want LastSeen %v", got, err, t0.Add(time.Hour))
		}
		if n, err := ss.DeleteIdleSessions(ctx, cutoff); err != nil || n != 1 {
			t.Fatalf("DeleteIdleSessions = %d, %v; want 1", n, err)
		}
		_, err = ss.GetSession(ctx, idle.ID, t0.Add(-time.Hour))
		wantCode(t, err, epicme.ENOTFOUND)
		if _, err := ss.GetSession(ctx, used.ID, cutoff); err != nil {
			t.Fatalf("DeleteIdleSessions deleted a session in use: %v", err)
		}
	})

	t.Run("TerminatedSessionIsGone", func(t *testing.T) {
		s, ss := sessions(t)
		u := newUser(t, s)
		in, other := newSession(u.ID), newSession(u.ID)
		for _, x := range []*epicme.MCPSession{in, other} {
			if err := ss.CreateSession(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		if err := ss.Subscribe(ctx, u.ID, in.ID, "epicme://entries/1"); err != nil {
			t.Fatal(err)
		}
		if ended, err := ss.EndSession(ctx, in.ID); err != nil || !ended {
			t.Fatalf("EndSession = %v, %v", ended, err)
		}
		_, err := ss.GetSession(ctx, in.ID, t0.Add(-time.Hour))
		wantCode(t, err, epicme.ENOTFOUND)
		wantCode(t, ss.TouchSession(ctx, in.ID, t0), epicme.ENOTFOUND)
		wantCode(t, ss.Subscribe(ctx, u.ID, in.ID, "epicme://entries/1"), epicme.ENOTFOUND)
		// The same id cannot come back with its old subscriptions.
		if err := ss.CreateSession(ctx, in); err != nil {
			t.Fatal(err)
		}
		if got, err := ss.GetSession(ctx, in.ID, t0); err != nil || len(got.Subscriptions) != 0 {
			t.Fatalf("a new session under an ended id = %+v, %v; want no subscriptions", got, err)
		}
		if _, err := ss.GetSession(ctx, other.ID, t0); err != nil {
			t.Fatalf("ending one session ended another: %v", err)
		}
	})

	// MCP security best practices, "Session Hijacking": a session is bound
	// to the user and client that opened it.
	t.Run("SessionIsBoundToItsOwner", func(t *testing.T) {
		s, ss := sessions(t)
		a, b := newUser(t, s), newUser(t, s)
		in := newSession(a.ID)
		if err := ss.CreateSession(ctx, in); err != nil {
			t.Fatal(err)
		}
		got, err := ss.GetSession(ctx, in.ID, t0)
		if err != nil || got.UserID != a.ID || got.ClientID != in.ClientID {
			t.Fatalf("GetSession = %+v, %v; want owner %s / %s", got, err, a.ID, in.ClientID)
		}
		// Another user can neither subscribe it nor unsubscribe it.
		wantCode(t, ss.Subscribe(ctx, b.ID, in.ID, "epicme://tags"), epicme.ENOTFOUND)
		if err := ss.Subscribe(ctx, a.ID, in.ID, "epicme://tags"); err != nil {
			t.Fatal(err)
		}
		if err := ss.Unsubscribe(ctx, b.ID, in.ID, "epicme://tags"); err != nil {
			t.Fatal(err)
		}
		if got, _ := ss.GetSession(ctx, in.ID, t0); got == nil || !reflect.DeepEqual(got.Subscriptions, []string{"epicme://tags"}) {
			t.Fatalf("after another user's unsubscribe: %+v", got)
		}
		// Deleting the user ends its sessions.
		del, ok := s.(userDeleter)
		if !ok {
			return
		}
		if err := del.DeleteUser(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		_, err = ss.GetSession(ctx, in.ID, t0)
		wantCode(t, err, epicme.ENOTFOUND)
	})

	t.Run("Subscriptions", func(t *testing.T) {
		s, ss := sessions(t)
		u := newUser(t, s)
		in := newSession(u.ID)
		if err := ss.CreateSession(ctx, in); err != nil {
			t.Fatal(err)
		}
		for _, uri := range []string{"epicme://tags", "epicme://entries/2", "epicme://tags", "epicme://entries/10"} {
			if err := ss.Subscribe(ctx, u.ID, in.ID, uri); err != nil {
				t.Fatal(err)
			}
		}
		got, err := ss.GetSession(ctx, in.ID, t0)
		if want := []string{"epicme://entries/10", "epicme://entries/2", "epicme://tags"}; err != nil || !reflect.DeepEqual(got.Subscriptions, want) {
			t.Fatalf("Subscriptions = %q, %v; want %q", got.Subscriptions, err, want)
		}
		if err := ss.Unsubscribe(ctx, u.ID, in.ID, "epicme://entries/2"); err != nil {
			t.Fatal(err)
		}
		if err := ss.Unsubscribe(ctx, u.ID, in.ID, "epicme://entries/99"); err != nil {
			t.Fatal(err)
		}
		got, _ = ss.GetSession(ctx, in.ID, t0)
		if want := []string{"epicme://entries/10", "epicme://tags"}; !reflect.DeepEqual(got.Subscriptions, want) {
			t.Fatalf("after Unsubscribe: %q, want %q", got.Subscriptions, want)
		}
		wantCode(t, ss.Subscribe(ctx, u.ID, in.ID, ""), epicme.EINVALID)

		// At most MaxSessionSubscriptions, even when asked concurrently.
		var wg sync.WaitGroup
		for i := range epicme.MaxSessionSubscriptions + 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = ss.Subscribe(ctx, u.ID, in.ID, fmt.Sprintf("epicme://entries/%d", 1000+i))
			}()
		}
		wg.Wait()
		got, _ = ss.GetSession(ctx, in.ID, t0)
		if len(got.Subscriptions) != epicme.MaxSessionSubscriptions {
			t.Fatalf("%d subscriptions stored, want at most %d", len(got.Subscriptions), epicme.MaxSessionSubscriptions)
		}
		wantCode(t, ss.Subscribe(ctx, u.ID, in.ID, "epicme://entries/5000"), epicme.ECONFLICT)
		// Subscribing again to what is there is no error at the limit.
		if err := ss.Subscribe(ctx, u.ID, in.ID, "epicme://tags"); err != nil {
			t.Fatal(err)
		}
	})
}
