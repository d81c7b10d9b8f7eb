package ratelimit

import (
	"net/netip"
	"strconv"
)

// Default prefix lengths of IPv6 sources: a /64 is one subscriber's
// network (RFC 6177 hands out /64 to /48), and a /48 one site, which holds
// 65,536 /64s an attacker can rotate through.
const (
	DefaultIPv6Prefix    = 64
	DefaultIPv6Aggregate = 48
)

// AggregateFactor is how many times a source's allowance its IPv6
// aggregate (the /48) gets: room for a few busy networks of one site, far
// less than the 65,536 /64s a /48 holds.
const AggregateFactor = 8

// Sources turns a request's network address into the keys its per-source
// limits count under. One address is its own source for IPv4; for IPv6 the
// source is the address's /IPv6Prefix network, since one subscriber holds
// a whole /64 and can pick a new address for every request, and each
// source also counts towards its /IPv6Aggregate network. The zero Sources
// uses the defaults and exempts nothing.
type Sources struct {
	IPv6Prefix    int // bits naming one source (default 64)
	IPv6Aggregate int // bits of the aggregate of sources (default 48)
	// ExemptLoopback lets loopback sources through every per-source limit:
	// they are this machine (the operator's tools, or a reverse proxy, which
	// --trust-forwarded-for sees through).
	ExemptLoopback bool
}

// Keys returns the key a source's limits count under and the key of its
// aggregate ("" when it has none: IPv4, or an address that does not
// parse, which is its own key). limited is false for an exempt source.
func (s Sources) Keys(addr string) (key, aggregate string, limited bool) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr, "", true
	}
	a = a.Unmap().WithZone("")
	if s.ExemptLoopback && a.IsLoopback() {
		return a.String(), "", false
	}
	if a.Is4() {
		return a.String(), "", true
	}
	bits, agg := s.IPv6Prefix, s.IPv6Aggregate
	if bits <= 0 || bits > 128 {
		bits = DefaultIPv6Prefix
	}
	if agg <= 0 || agg > bits {
		agg = min(DefaultIPv6Aggregate, bits)
	}
	key = prefixKey(a, bits)
	if agg < bits {
		aggregate = prefixKey(a, agg)
	}
	return key, aggregate, true
}

func prefixKey(a netip.Addr, bits int) string {
	p, _ := a.Prefix(bits)
	if bits == 128 {
		return a.String()
	}
	return p.Addr().String() + "/" + strconv.Itoa(bits)
}

// Aggregate is the allowance of an aggregate of sources whose single
// source has l.
func Aggregate(l Limit) Limit {
	return Limit{PerMinute: l.PerMinute * AggregateFactor, Burst: l.Burst * AggregateFactor}
}
