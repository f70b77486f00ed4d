package address_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"vigil.dev/vigil/agent/address"
	"vigil.dev/vigil/test/lab"
)

func vipURL(a netip.Addr, path string) string {
	return fmt.Sprintf("http://%s%s", net.JoinHostPort(a.String(), "80"), path)
}

func TestBindMakesTheVIPReachableAndUnbindRemovesIt(t *testing.T) {
	l := lab.ForTest(t, lab.Config{Nodes: 2, WithoutControlPlane: true})
	ctx := context.Background()
	m, _ := lab.NetlinkForTest(t, l.Nodes[0])
	for _, p := range []netip.Prefix{netip.PrefixFrom(lab.VIPv4(0), 32), netip.PrefixFrom(lab.VIPv6(0), 128)} {
		b := address.Binding{Interface: lab.NodeInterface, Prefix: p}
		for range 2 { // idempotent
			if err := m.Bind(b); err != nil {
				t.Fatal(err)
			}
		}
		bound, err := m.Bound()
		if err != nil || len(bound) != 1 || bound[0] != b {
			t.Fatalf("Bound() = %v, %v; want [%v]", bound, err, b)
		}
		// 3 s: room for one neighbour-solicitation retry (see lab.MeasureNeighbourUpdates).
		if body, err := l.Get(ctx, vipURL(p.Addr(), "/"), 3*time.Second); err != nil || body != "node-a" {
			t.Fatalf("GET %s from the client: %q, %v; want node-a", p.Addr(), body, err)
		}
		for range 2 {
			if err := m.Unbind(b); err != nil {
				t.Fatal(err)
			}
		}
		if bound, _ := m.Bound(); len(bound) != 0 {
			t.Fatalf("still bound after Unbind: %v", bound)
		}
		if _, err := l.Get(ctx, vipURL(p.Addr(), "/"), 300*time.Millisecond); err == nil {
			t.Fatalf("%s still answers after Unbind", p.Addr())
		}
	}
}

// An IPv6 VIP is usable at once (no DAD) and neither family's VIP becomes the node's source
// address for its own outgoing connections.
func TestVIPIsUsableAtOnceAndNeverTheNodeSourceAddress(t *testing.T) {
	l := lab.ForTest(t, lab.Config{Nodes: 2, WithoutControlPlane: true})
	ctx := context.Background()
	a, b := l.Nodes[0], l.Nodes[1]
	m, ns := lab.NetlinkForTest(t, a)
	// Turn DAD back on in this node, as on a real host, to see that the VIP skips it.
	if _, err := l.Exec(a.Name, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_dad=1"); err != nil {
		t.Fatal(err)
	}
	v4 := address.Binding{Interface: lab.NodeInterface, Prefix: netip.PrefixFrom(lab.VIPv4(0), 32)}
	v6 := address.Binding{Interface: lab.NodeInterface, Prefix: netip.PrefixFrom(lab.VIPv6(0), 128)}
	for _, x := range []address.Binding{v4, v6} {
		if err := m.Bind(x); err != nil {
			t.Fatal(err)
		}
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	addrs, err := h.AddrList(nil, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ad := range addrs {
		if ad.IP.Equal(v6.Prefix.Addr().AsSlice()) {
			found = true
			if ad.Flags&unix.IFA_F_TENTATIVE != 0 {
				t.Error("IPv6 VIP is tentative (DAD running)")
			}
			if ad.Flags&unix.IFA_F_DEPRECATED == 0 {
				t.Error("IPv6 VIP is preferred, so the kernel may pick it as a source address")
			}
		}
	}
	if !found {
		t.Fatal("IPv6 VIP not listed")
	}
	// The client answers immediately over IPv6.
	if body, err := l.Get(ctx, vipURL(v6.Prefix.Addr(), "/"), 3*time.Second); err != nil || body != a.Name {
		t.Fatalf("IPv6 VIP right after bind: %q, %v", body, err)
	}
	// node-a's own connections to node-b come from node-a's address, not the VIP.
	for _, c := range []struct{ peer, want netip.Addr }{{b.IPv4, a.IPv4}, {b.IPv6, a.IPv6}} {
		got, err := l.GetFrom(ctx, a.Name, vipURL(c.peer, "/remote"), time.Second)
		if err != nil || got != c.want.String() {
			t.Errorf("node-a -> %s came from %q (%v), want %s", c.peer, got, err, c.want)
		}
	}
}

func TestForeignAddressIsNeverTouched(t *testing.T) {
	l := lab.ForTest(t, lab.Config{Nodes: 1, WithoutControlPlane: true})
	n := l.Nodes[0]
	m, _ := lab.NetlinkForTest(t, n)
	foreign := address.Binding{Interface: lab.NodeInterface, Prefix: netip.PrefixFrom(lab.VIPv4(50), 32)}
	if _, err := l.Exec(n.Name, "ip", "addr", "add", foreign.Prefix.String(), "dev", lab.NodeInterface); err != nil {
		t.Fatal(err)
	}
	var fe *address.ForeignAddressError
	if err := m.Bind(foreign); !errors.As(err, &fe) {
		t.Errorf("Bind over a foreign address: %v, want ForeignAddressError", err)
	}
	if err := m.Unbind(foreign); !errors.As(err, &fe) {
		t.Errorf("Unbind of a foreign address: %v, want ForeignAddressError", err)
	}
	if bound, _ := m.Bound(); len(bound) != 0 {
		t.Errorf("a foreign address is listed as Vigil's: %v", bound)
	}
	out, err := l.Exec(n.Name, "ip", "-o", "addr", "show", "dev", lab.NodeInterface)
	if err != nil || !strings.Contains(out, foreign.Prefix.String()) {
		t.Errorf("foreign address gone: %s %v", out, err)
	}
	// The node's own address is foreign too: binding a VIP equal to it is refused.
	own := address.Binding{Interface: lab.NodeInterface, Prefix: netip.PrefixFrom(n.IPv4, 32)}
	if err := m.Bind(own); !errors.As(err, &fe) {
		t.Errorf("Bind of the node's own address: %v, want ForeignAddressError", err)
	}
}

func TestInterfaceSelectionOnARealNode(t *testing.T) {
	l := lab.ForTest(t, lab.Config{Nodes: 1, WithoutControlPlane: true})
	m, _ := lab.NetlinkForTest(t, l.Nodes[0])
	links, err := m.Links()
	if err != nil {
		t.Fatal(err)
	}
	for _, vip := range []netip.Addr{lab.VIPv4(0), lab.VIPv6(0)} {
		if got, err := address.ResolveInterface(links, "", vip); err != nil || got != lab.NodeInterface {
			t.Errorf("%s: %q, %v; want eth0", vip, got, err)
		}
	}
	if _, err := address.ResolveInterface(links, "", netip.MustParseAddr("198.19.200.1")); !address.IsNoInterface(err) {
		t.Errorf("address outside every subnet: %v, want NoInterfaceError", err)
	}
	err = m.Bind(address.Binding{Interface: "nope0", Prefix: netip.PrefixFrom(lab.VIPv4(0), 32)})
	if !address.IsNoInterface(err) || !strings.Contains(err.Error(), `"nope0"`) || !strings.Contains(err.Error(), "198.18.0.100") {
		t.Errorf("unknown interface: %v; want a NoInterfaceError naming nope0 and the address", err)
	}
}

// An address carries a kernel lifetime: renewed, it stays; left alone (the agent died), the
// kernel removes it by itself about a lifetime after the last renewal. Host-length
// addresses add no prefix route.
func TestLifetimeIsADeadMansSwitch(t *testing.T) {
	l := lab.ForTest(t, lab.Config{Nodes: 1, WithoutControlPlane: true})
	m, ns := lab.NetlinkForTest(t, l.Nodes[0])
	m.Lifetime = time.Second
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, p := range []netip.Prefix{netip.PrefixFrom(lab.VIPv4(5), 32), netip.PrefixFrom(lab.VIPv6(5), 128)} {
		b := address.Binding{Interface: lab.NodeInterface, Prefix: p}
		if err := m.Bind(b); err != nil {
			t.Fatal(err)
		}
		family := netlink.FAMILY_V4
		if p.Addr().Is6() {
			family = netlink.FAMILY_V6
		}
		routes, err := h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			if r.Dst != nil && r.Dst.IP.Equal(p.Addr().AsSlice()) {
				t.Errorf("%s added a prefix route %v", p, r)
			}
		}
		// Renewed every 250 ms for 3 s: it stays.
		for range 12 {
			time.Sleep(250 * time.Millisecond)
			if err := m.Renew([]address.Binding{b}); err != nil {
				t.Fatal(err)
			}
		}
		if bound, _ := m.Bound(); len(bound) != 1 {
			t.Fatalf("%s gone though renewed: %v", p, bound)
		}
		// Not renewed any more: gone by itself within lifetime + 1 s (+ slack).
		stopped := time.Now()
		for {
			bound, _ := m.Bound()
			if len(bound) == 0 {
				t.Logf("%s lapsed %v after its last renewal", p, time.Since(stopped).Round(10*time.Millisecond))
				break
			}
			if time.Since(stopped) > 2500*time.Millisecond {
				t.Fatalf("%s still there %v after its last renewal", p, time.Since(stopped))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
