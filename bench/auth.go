package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/epicme/epicme"
)

// FixtureAuth returns an authentication middleware and caller resolver for
// the benchmark's in-process server: a request acts, with every scope, as
// the fixture user whose index is in UserHeader (user 0 without one). It
// lets one load run spread its calls over many journals, as real traffic
// does, without minting thousands of tokens.
//
// It authenticates nothing. It exists for "epicme-bench run" without --url,
// which serves it on a loopback port of its own for the length of the run,
// and must never be wired into "epicme serve".
func FixtureAuth(ctx context.Context, store epicme.Store, users int) (func(http.Handler) http.Handler, epicme.CallerResolver, error) {
	all, err := store.ListUsers(ctx)
	if err != nil {
		return nil, nil, err
	}
	byEmail := make(map[string]*epicme.User, len(all))
	for _, u := range all {
		if u.Issuer == epicme.LocalIssuer {
			byEmail[u.Email] = u
		}
	}
	callers := make([]*epicme.Caller, users)
	for i := range callers {
		u := byEmail[UserEmail(i)]
		if u == nil {
			return nil, nil, fmt.Errorf("fixture user %d (%s) is missing; build the fixture with epicme-bench fixture", i, UserEmail(i))
		}
		callers[i] = &epicme.Caller{User: u, Scopes: epicme.Scopes(epicme.AllScopes)}
	}
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			i := 0
			if h := r.Header.Get(UserHeader); h != "" {
				n, err := strconv.Atoi(h)
				if err != nil || n < 0 || n >= len(callers) {
					http.Error(w, "unknown fixture user", http.StatusForbidden)
					return
				}
				i = n
			}
			next.ServeHTTP(w, r.WithContext(epicme.NewContextWithCaller(r.Context(), callers[i])))
		})
	}
	resolve := epicme.CallerResolverFunc(func(ctx context.Context) (*epicme.Caller, error) {
		if c := epicme.CallerFromContext(ctx); c != nil {
			return c, nil
		}
		return nil, epicme.Errorf(epicme.EFORBIDDEN, "no caller")
	})
	return mw, resolve, nil
}

// CountFixtureUsers returns how many fixture users the store holds (users
// 0, 1, 2, ... by email, up to the first missing one).
func CountFixtureUsers(ctx context.Context, store epicme.Store) (int, error) {
	all, err := store.ListUsers(ctx)
	if err != nil {
		return 0, err
	}
	have := make(map[string]bool, len(all))
	for _, u := range all {
		have[u.Email] = true
	}
	n := 0
	for have[UserEmail(n)] {
		n++
	}
	return n, nil
}
