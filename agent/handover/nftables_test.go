package handover_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"vigil.dev/vigil/agent/address"
	"vigil.dev/vigil/agent/announce"
	"vigil.dev/vigil/agent/handover"
	"vigil.dev/vigil/internal/netnsutil"
	"vigil.dev/vigil/test/lab"
)

const linePort = 9000

// serveLines answers every line on every connection with the node's name, so one long-lived
// connection can ask several times who is serving it.
func serveLines(t *testing.T, ns netns.NsHandle, name string) {
	t.Helper()
	var ln net.Listener
	if err := netnsutil.Do(ns, func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", linePort))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go lab.ServeEach(ln, func(c net.Conn) {
		r := bufio.NewScanner(c)
		for r.Scan() {
			if _, err := fmt.Fprintln(c, name); err != nil {
				return
			}
		}
	})
}

// ask sends one line on c and returns the answer.
func ask(c net.Conn, r *bufio.Reader) (string, error) {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintln(c, "who"); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	return strings.TrimSpace(line), err
}

type clientConn struct {
	net.Conn
	r *bufio.Reader
}

func (c clientConn) ask() (string, error) { return ask(c.Conn, c.r) }

func dial(t *testing.T, l *lab.Lab, vip netip.Addr) clientConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := lab.DialerIn(l.Client.NS)(ctx, "tcp", net.JoinHostPort(vip.String(), fmt.Sprint(linePort)))
	if err != nil {
		t.Fatalf("dialling %s from the client: %v", vip, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return clientConn{c, bufio.NewReader(c)}
}

type node struct {
	ns    netns.NsHandle
	addrs *address.Netlink
	ann   *announce.Raw
	mac   net.HardwareAddr
}

func openNode(t *testing.T, m *lab.Member) node {
	t.Helper()
	addrs, ns := lab.NetlinkForTest(t, m)
	links, err := addrs.Links()
	if err != nil {
		t.Fatal(err)
	}
	n := node{ns: ns, addrs: addrs, ann: announce.NewRaw(ns)}
	for _, l := range links {
		if l.Name == lab.NodeInterface {
			n.mac = l.HardwareAddr
		}
	}
	serveLines(t, ns, m.Name)
	return n
}

func (n node) take(t *testing.T, vip netip.Addr) {
	t.Helper()
	if err := n.addrs.Bind(address.Binding{Interface: lab.NodeInterface, Prefix: netip.PrefixFrom(vip, vip.BitLen())}); err != nil {
		t.Fatal(err)
	}
	if err := n.ann.Announce(context.Background(), lab.NodeInterface, vip, 1, 0); err != nil {
		t.Fatal(err)
	}
}

// A planned move in miniature: node-b serves a connection, node-a takes the VIP and
// announces it. With the forwarding rule on node-a, the old connection keeps being served
// by node-b while new connections are node-a's; without it, the old connection breaks.
func TestForwardingKeepsTheOldOwnersConnections(t *testing.T) {
	l := lab.ForTest(t, lab.Config{Nodes: 2, WithoutControlPlane: true})
	a, b := openNode(t, l.Nodes[0]), openNode(t, l.Nodes[1])
	fwd, err := handover.NewNFT(a.ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fwd.Close)
	if err := fwd.Reset(); err != nil {
		t.Fatal(err)
	}

	for _, vip := range []netip.Addr{lab.VIPv4(0), lab.VIPv6(0)} {
		t.Run(vip.String(), func(t *testing.T) {
			b.take(t, vip)
			old := dial(t, l, vip)
			if who, err := old.ask(); err != nil || who != "node-b" {
				t.Fatalf("before the move: %q, %v; want node-b", who, err)
			}

			rule := handover.Rule{Interface: lab.NodeInterface, VIP: vip, To: b.mac, Window: 3 * time.Second}
			installed := time.Now()
			for range 2 { // idempotent
				if err := fwd.Sync([]handover.Rule{rule}); err != nil {
					t.Fatal(err)
				}
			}
			a.take(t, vip)
			var fresh clientConn
			deadline := time.Now().Add(3 * time.Second)
			for {
				fresh = dial(t, l, vip)
				if who, err := fresh.ask(); err == nil && who == "node-a" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("new connections never reached node-a after its announcement")
				}
				time.Sleep(20 * time.Millisecond)
			}
			for range 3 {
				if who, err := old.ask(); err != nil || who != "node-b" {
					t.Fatalf("the old connection after the move: %q, %v; want node-b still serving it", who, err)
				}
				if who, err := fresh.ask(); err != nil || who != "node-a" {
					t.Fatalf("a new connection after the move: %q, %v; want node-a", who, err)
				}
			}

			// The window ends in the kernel, with no call from the agent (as if it had died):
			// the old connection is no longer forwarded, and breaks; the new one does not.
			time.Sleep(time.Until(installed.Add(rule.Window + 100*time.Millisecond)))
			if who, err := old.ask(); err == nil {
				t.Fatalf("the old connection answered %q after the window; want it broken", who)
			}
			if err := fwd.Sync(nil); err != nil {
				t.Fatal(err)
			}
			if who, err := fresh.ask(); err != nil || who != "node-a" {
				t.Fatalf("node-a's own connection without forwarding: %q, %v", who, err)
			}
			for _, n := range []node{a, b} {
				if err := n.addrs.Unbind(address.Binding{Interface: lab.NodeInterface, Prefix: netip.PrefixFrom(vip, vip.BitLen())}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}

	// Reset leaves no table behind.
	if err := fwd.Sync([]handover.Rule{{Interface: lab.NodeInterface, VIP: lab.VIPv4(1), To: b.mac, Window: time.Second}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(nftTables(t, l.Nodes[0].NS), handover.TableName) {
		t.Fatalf("no table %s after Sync", handover.TableName)
	}
	if err := fwd.Reset(); err != nil {
		t.Fatal(err)
	}
	if out := nftTables(t, l.Nodes[0].NS); strings.Contains(out, handover.TableName) {
		t.Fatalf("table left after Reset: %s", out)
	}
}

func TestRuleWithoutEthernetAddressIsRefused(t *testing.T) {
	l := lab.ForTest(t, lab.Config{Nodes: 1, WithoutControlPlane: true})
	fwd, err := handover.NewNFT(lab.NamespaceForTest(t, l.Nodes[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	err = fwd.Sync([]handover.Rule{{Interface: lab.NodeInterface, VIP: lab.VIPv4(0), To: nil, Window: time.Second}})
	if err == nil || !strings.Contains(err.Error(), "Ethernet") {
		t.Fatalf("Sync without the old owner's address: %v, want an error naming Ethernet addresses", err)
	}
	err = fwd.Sync([]handover.Rule{{Interface: "nosuch0", VIP: lab.VIPv4(0), To: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Window: time.Second}})
	if err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Fatalf("Sync on a missing interface: %v, want an error naming it", err)
	}
}

func nftTables(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "tables").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list tables: %v: %s", err, out)
	}
	return string(out)
}
