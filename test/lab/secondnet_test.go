package lab

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The second network: the client reaches every node over eth1 in IPv4 and IPv6; a lost
// carrier cuts eth1 only, eth0 still answers; a crash takes eth1 down with eth0 and the
// restore brings it back; the teardown leaves no link on the host.
func TestSecondNetwork(t *testing.T) {
	ctx := context.Background()
	linksBefore := hostLinks(t)
	l, err := Up(ctx, Config{Nodes: 2, WithoutControlPlane: true, SecondNetwork: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Down(); err != nil {
			t.Error(err)
		}
		if after := hostLinks(t); after != linksBefore {
			t.Errorf("host links changed:\nbefore %s\nafter  %s", linksBefore, after)
		}
	}()
	answers := func(n *Member, a fmt.Stringer) bool {
		body, err := l.Get(ctx, url(a), 300*time.Millisecond)
		return err == nil && body == n.Name
	}
	// A link that comes back answers once the client's neighbour entry, failed while the
	// carrier was lost, is resolved again: a few round trips, longer on a busy machine.
	answersSoon := func(n *Member, a fmt.Stringer) bool {
		for deadline := time.Now().Add(3 * time.Second); ; {
			if answers(n, a) {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, n := range l.Nodes {
		if !answers(n, n.SecondIPv4) || !answers(n, n.SecondIPv6) {
			t.Errorf("%s does not answer on %s / %s", n.Name, n.SecondIPv4, n.SecondIPv6)
		}
	}
	node := l.Nodes[0]
	if err := l.SetCarrier(node.Name, SecondInterface, false); err != nil {
		t.Fatal(err)
	}
	if link, _ := l.Exec(node.Name, "ip", "-o", "link", "show", SecondInterface); !strings.Contains(link, "NO-CARRIER") || !strings.Contains(link, ",UP") {
		t.Errorf("eth1 without carrier: %s; want it up with NO-CARRIER", link)
	}
	if answers(node, node.SecondIPv4) || !answers(node, node.IPv4) {
		t.Errorf("without carrier on eth1, %s should answer on eth0 only", node.Name)
	}
	if err := l.SetCarrier(node.Name, SecondInterface, true); err != nil {
		t.Fatal(err)
	}
	if !answersSoon(node, node.SecondIPv4) {
		t.Errorf("%s does not answer on eth1 within 3s of its carrier coming back", node.Name)
	}
	if err := l.CrashNode(node.Name); err != nil {
		t.Fatal(err)
	}
	if link, _ := l.Exec(node.Name, "ip", "-o", "link", "show", SecondInterface); strings.Contains(link, ",UP") {
		t.Errorf("eth1 of a crashed node is up: %s", link)
	}
	if err := l.RestoreNode(node.Name); err != nil {
		t.Fatal(err)
	}
	if !answersSoon(node, node.SecondIPv6) {
		t.Errorf("restored %s does not answer on eth1 within 3s", node.Name)
	}
	if err := l.SetCarrier("cp", SecondInterface, false); err == nil {
		t.Error("the control plane has no eth1, yet SetCarrier accepted it")
	}
}
