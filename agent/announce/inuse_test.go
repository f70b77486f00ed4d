package announce_test

import (
	"context"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"vigil.dev/vigil/agent/announce"
	"vigil.dev/vigil/test/lab"
)

// InUse finds an address another node holds (its kernel answers ARP / Neighbor
// Solicitations for it) and finds none once that node let it go — IPv4 and IPv6.
func TestInUseSeesAnAddressAnotherNodeHolds(t *testing.T) {
	l := lab.ForTest(t, lab.Config{Nodes: 2, WithoutControlPlane: true})
	raw := announce.NewRaw(lab.NamespaceForTest(t, l.Nodes[0]))
	defer func() { _ = raw.Close() }()
	holder := l.Nodes[1].NS
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", holder}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	for _, c := range []struct {
		vip    netip.Addr
		prefix string
		extra  []string
	}{{lab.VIPv4(7), "/32", nil}, {lab.VIPv6(7), "/128", []string{"nodad"}}} {
		ask := func() bool {
			t.Helper()
			start := time.Now()
			used, err := raw.InUse(context.Background(), lab.NodeInterface, c.vip, 300*time.Millisecond)
			if err != nil {
				t.Fatalf("%s: %v", c.vip, err)
			}
			t.Logf("%s in use: %v (asked in %v)", c.vip, used, time.Since(start).Round(time.Millisecond))
			return used
		}
		if ask() {
			t.Errorf("%s: in use before anyone holds it", c.vip)
		}
		ip(append([]string{"addr", "add", c.vip.String() + c.prefix, "dev", lab.NodeInterface}, c.extra...)...)
		if !ask() {
			t.Errorf("%s: held by %s, yet nobody answered", c.vip, l.Nodes[1].Name)
		}
		ip("addr", "del", c.vip.String()+c.prefix, "dev", lab.NodeInterface)
		if ask() {
			t.Errorf("%s: in use after %s let it go", c.vip, l.Nodes[1].Name)
		}
	}
}
