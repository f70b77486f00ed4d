package dataplane

import (
	"net/netip"
	"testing"

	"vigil.dev/vigil/agent/address"
)

func TestMakePlan(t *testing.T) {
	p := netip.MustParsePrefix
	links := []address.Link{
		{Name: "eth0", Up: true, Carrier: true, Addresses: []address.Address{{Prefix: p("198.18.0.11/24")}, {Prefix: p("fd00:198:18::11/64")}}},
		{Name: "eth1", Up: true, Carrier: true, Addresses: []address.Address{{Prefix: p("198.19.1.11/24")}}},
	}
	vip := func(name, addr string, bits int, iface string) VIP {
		return VIP{Name: name, Address: netip.MustParseAddr(addr), PrefixLen: bits, Interface: iface}
	}
	b := func(iface, prefix string) address.Binding {
		return address.Binding{Interface: iface, Prefix: p(prefix)}
	}

	cases := []struct {
		name               string
		desired            []VIP
		bound              []address.Binding
		bind, unbind, keep []string
		failed             []string
	}{
		{name: "nothing to do"},
		{name: "bind new v4 and v6",
			desired: []VIP{vip("a", "198.18.0.100", 32, ""), vip("b", "fd00:198:18::100", 128, "")},
			bind:    []string{"198.18.0.100/32 on eth0", "fd00:198:18::100/128 on eth0"}},
		{name: "adopt what is already bound: no flap",
			desired: []VIP{vip("a", "198.18.0.100", 32, "")},
			bound:   []address.Binding{b("eth0", "198.18.0.100/32")},
			keep:    []string{"198.18.0.100/32 on eth0"}},
		{name: "stale Vigil address is removed",
			bound:  []address.Binding{b("eth0", "198.18.0.101/32")},
			unbind: []string{"198.18.0.101/32 on eth0"}},
		{name: "moved to another interface: unbind old, bind new",
			desired: []VIP{vip("a", "198.18.0.100", 32, "eth1")},
			bound:   []address.Binding{b("eth0", "198.18.0.100/32")},
			bind:    []string{"198.18.0.100/32 on eth1"}, unbind: []string{"198.18.0.100/32 on eth0"}},
		{name: "prefix change on the same interface is re-bound in place",
			desired: []VIP{vip("a", "198.18.0.100", 24, "")},
			bound:   []address.Binding{b("eth0", "198.18.0.100/32")},
			bind:    []string{"198.18.0.100/24 on eth0"}},
		{name: "no interface: failed, and an old binding goes",
			desired: []VIP{vip("a", "198.19.200.1", 32, "")},
			bound:   []address.Binding{b("eth1", "198.19.200.1/32")},
			failed:  []string{"a"}, unbind: []string{"198.19.200.1/32 on eth1"}},
	}
	str := func(ts []Target) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Binding.String())
		}
		return out
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := MakePlan(tc.desired, links, tc.bound)
			var unbind []string
			for _, u := range plan.Unbind {
				unbind = append(unbind, u.String())
			}
			var failed []string
			for name := range plan.Failed {
				failed = append(failed, name)
			}
			check := func(what string, got, want []string) {
				if len(got) != len(want) {
					t.Errorf("%s = %v, want %v", what, got, want)
					return
				}
				for i := range got {
					if got[i] != want[i] {
						t.Errorf("%s = %v, want %v", what, got, want)
						return
					}
				}
			}
			check("bind", str(plan.Bind), tc.bind)
			check("keep", str(plan.Keep), tc.keep)
			check("unbind", unbind, tc.unbind)
			check("failed", failed, tc.failed)
		})
	}
}
