package authserver

import (
	"net/netip"
	"testing"
)

// The metadata-document guard refuses every range that can reach this
// machine or its network through an embedded IPv4 address or a
// non-routable prefix, and nothing public.
func TestRule_CIMDBlockedRanges(t *testing.T) {
	for addr, blocked := range map[string]bool{
		"::127.0.0.1":         true, // IPv4-compatible (::/96)
		"::10.0.0.1":          true,
		"2001::1":             true, // Teredo 2001::/32
		"2001:0:4136:e378::1": true,
		"2001:db8::1":         true, // documentation
		"100::1":              true, // discard-only 100::/64
		"64:ff9b::7f00:1":     true, // NAT64, as before
		"2002:7f00:1::1":      true, // 6to4, as before
		"::1":                 true,
		"fe80::1":             true,
		"fc00::1":             true,
		"10.0.0.1":            true,
		"2001:4860::8888":     false, // a public address
		"2606:4700::1111":     false,
		"100:0:0:1::1":        false, // outside 100::/64
		"8.8.8.8":             false,
	} {
		if got := blockedAddr(netip.MustParseAddr(addr)); got != blocked {
			t.Errorf("blockedAddr(%s) = %v, want %v", addr, got, blocked)
		}
	}
}
