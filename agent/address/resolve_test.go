package address

import (
	"net/netip"
	"testing"
)

func TestResolveInterface(t *testing.T) {
	p := netip.MustParsePrefix
	links := []Link{
		{Name: "lo", Up: true, Loopback: true, Addresses: []Address{{Prefix: p("127.0.0.1/8")}, {Prefix: p("::1/128")}}},
		{Name: "eth0", Up: true, Carrier: true, Addresses: []Address{{Prefix: p("198.18.0.11/24")}, {Prefix: p("fd00:198:18::11/64")}}},
		{Name: "eth1", Up: true, Carrier: true, Addresses: []Address{{Prefix: p("198.18.0.201/28")}, {Prefix: p("198.19.7.7/32")}}},
		{Name: "eth2", Up: false, Addresses: []Address{{Prefix: p("198.19.8.1/24")}}},
		{Name: "eth3", Up: true, Carrier: true, Addresses: []Address{{Prefix: p("198.19.9.100/24"), Vigil: true}}},
		{Name: "eth4", Up: true, Carrier: false, Addresses: []Address{{Prefix: p("198.19.10.1/24")}}},
	}
	cases := []struct {
		name, requested, vip, want string
		wantErr                    bool
		linkDown                   bool // the error says the link may come back
	}{
		{"v4 by subnet", "", "198.18.0.100", "eth0", false, false},
		{"v6 by subnet", "", "fd00:198:18::100", "eth0", false, false},
		{"longest prefix wins", "", "198.18.0.205", "eth1", false, false},
		{"host address is not a subnet", "", "198.19.7.8", "", true, false},
		{"a subnet only on a down interface: the link is down", "", "198.19.8.5", "", true, true},
		{"Vigil's own address is not a subnet", "", "198.19.9.5", "", true, false},
		{"loopback never", "", "127.0.0.5", "", true, false},
		{"no subnet: no guess through the default route", "", "198.19.200.1", "", true, false},
		{"explicit interface", "eth1", "198.18.0.100", "eth1", false, false},
		{"explicit unknown interface", "bond0", "198.18.0.100", "", true, false},
		{"explicit down interface", "eth2", "198.19.8.5", "", true, true},
		{"the subnet's interface has no carrier", "", "198.19.10.5", "", true, true},
		{"explicit interface without carrier", "eth4", "198.19.10.5", "", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveInterface(links, tc.requested, netip.MustParseAddr(tc.vip))
			if tc.wantErr {
				if err == nil || !IsNoInterface(err) {
					t.Fatalf("got %q, %v; want a NoInterfaceError", got, err)
				}
				if IsLinkDown(err) != tc.linkDown {
					t.Errorf("IsLinkDown(%v) = %v, want %v", err, IsLinkDown(err), tc.linkDown)
				}
				t.Logf("error: %v", err)
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestNoInterfaceErrorNamesInterfaceAndAddress(t *testing.T) {
	_, err := ResolveInterface(nil, "eth9", netip.MustParseAddr("198.18.0.100"))
	if err == nil || err.Error() != `VIP 198.18.0.100: interface "eth9": no such interface on this node` {
		t.Fatalf("error %q", err)
	}
}
