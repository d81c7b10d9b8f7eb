package ratelimit

import "testing"

// Every address of one IPv6 /64 is one source, and every /64 of a /48
// counts towards one aggregate; IPv4 and mapped addresses key by address.
func TestRule_SourceKeys(t *testing.T) {
	def := Sources{ExemptLoopback: true}
	for _, c := range []struct {
		s              Sources
		addr, key, agg string
		limited        bool
	}{
		{def, "2001:db8:1:2::1", "2001:db8:1:2::/64", "2001:db8:1::/48", true},
		{def, "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64", "2001:db8:1::/48", true},
		{def, "2001:db8:1:3::1", "2001:db8:1:3::/64", "2001:db8:1::/48", true},
		{def, "fe80::1%eth0", "fe80::/64", "fe80::/48", true},
		{def, "192.0.2.7", "192.0.2.7", "", true},
		{def, "::ffff:192.0.2.7", "192.0.2.7", "", true},
		{def, "127.0.0.1", "127.0.0.1", "", false},
		{def, "::1", "::1", "", false},
		{Sources{}, "::1", "::/64", "::/48", true},
		{Sources{IPv6Prefix: 56}, "2001:db8:1:2::1", "2001:db8:1::/56", "2001:db8:1::/48", true},
		{Sources{IPv6Prefix: 128, IPv6Aggregate: 64}, "2001:db8::5", "2001:db8::5", "2001:db8::/64", true},
		{def, "not-an-address", "not-an-address", "", true},
	} {
		key, agg, limited := c.s.Keys(c.addr)
		if key != c.key || agg != c.agg || limited != c.limited {
			t.Errorf("%+v.Keys(%s) = %q %q %v, want %q %q %v", c.s, c.addr, key, agg, limited, c.key, c.agg, c.limited)
		}
	}
}
