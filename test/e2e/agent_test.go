// Package e2e runs Vigil's real binaries in the lab and checks what a client sees.
package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"vigil.dev/vigil/test/lab"
)

func TestAgentHoldsExactlyTheVIPsItsNodeOwns(t *testing.T) {
	e := newEnv(t, 2)
	e.startAgent("node-a")
	e.startAgent("node-b")
	v4, v6 := lab.VIPv4(0), lab.VIPv6(0)
	e.createVIP("web", v4.String(), "")
	e.createVIP("web-v6", v6.String(), "")

	e.setOwner("web", "node-a")
	e.setOwner("web-v6", "node-a")
	t.Logf("owner set -> answered by node-a in %v (v4), %v (v6)", e.waitAnswer(v4, "node-a", 5*time.Second), e.waitAnswer(v6, "node-a", 5*time.Second))
	e.waitAddress("node-b", v4, false, time.Second)

	// A move: node-a lets go, node-b binds and announces; the client follows at once.
	e.setOwner("web", "node-b")
	e.setOwner("web-v6", "node-b")
	t.Logf("owner moved -> answered by node-b in %v (v4), %v (v6)", e.waitAnswer(v4, "node-b", 3*time.Second), e.waitAnswer(v6, "node-b", 3*time.Second))
	// node-a keeps the addresses, silently, until node-b reports them bound and then for
	// the drain (--handover-drain, 2 s), so that its open connections can finish.
	e.waitAddress("node-a", v4, false, 6*time.Second)
	e.waitAddress("node-a", v6, false, 6*time.Second)
}

func TestAgentRestartAdoptsItsAddressesWithoutAFlap(t *testing.T) {
	e := newEnv(t, 1)
	agent := e.startAgent("node-a")
	v4 := lab.VIPv4(1)
	e.createVIP("db", v4.String(), "")
	e.setOwner("db", "node-a")
	e.waitAnswer(v4, "node-a", 5*time.Second)

	// Watch node-a's addresses and the client's view while the agent crashes and restarts.
	ns, err := netns.GetFromName(e.l.Nodes[0].NS)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ns.Close() }()
	updates := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.AddrSubscribeAt(ns, updates, done); err != nil {
		t.Fatal(err)
	}
	rec, err := e.l.StartRecorder(lab.RecordOptions{URL: url(v4), Duration: 30 * time.Second, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Kill(); err != nil {
		t.Fatal(err)
	}
	restarted := e.startAgent("node-a")
	if _, err := rec.WaitFor(10*time.Second, func([]lab.Sample) bool {
		return strings.Contains(restarted.Log(), "Starting workers")
	}); err != nil {
		t.Fatalf("restarted agent never synced: %v\n%s", err, restarted.Log())
	}
	time.Sleep(time.Second) // a full sync and its announcements
	samples, err := rec.Stop()
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case u := <-updates:
			if u.LinkAddress.IP.Equal(v4.AsSlice()) && !u.NewAddr {
				t.Errorf("the restarted agent removed %s (it should adopt it)", v4)
			}
			continue
		default:
		}
		break
	}
	failed := 0
	for _, s := range samples {
		if !s.OK {
			failed++
		}
	}
	if failed > 0 || len(samples) < 50 {
		t.Errorf("client saw %d failed of %d requests across the agent restart, want 0", failed, len(samples))
	}
}

func TestAgentRemovesStaleVIPsAndNeverForeignAddresses(t *testing.T) {
	e := newEnv(t, 2)
	agent := e.startAgent("node-a")
	stale, foreign := lab.VIPv4(2), lab.VIPv4(50)
	e.createVIP("stale", stale.String(), "")
	e.setOwner("stale", "node-a")
	e.waitAddress("node-a", stale, true, 5*time.Second)
	if err := agent.Kill(); err != nil { // a crash: nothing released
		t.Fatal(err)
	}
	e.waitAddress("node-a", stale, true, 0)
	// While it is down the VIP moves away, and someone adds an address of their own.
	e.setOwner("stale", "node-b")
	if _, err := e.l.Exec("node-a", "ip", "addr", "add", foreign.String()+"/32", "dev", lab.NodeInterface); err != nil {
		t.Fatal(err)
	}
	e.startAgent("node-a")
	e.waitAddress("node-a", stale, false, 5*time.Second)
	e.waitAddress("node-a", foreign, true, 0)
}

// With no other node to hand over to (and no controller to move them), a stopping agent
// releases every VIP once its handover timeout has passed.
func TestAgentReleasesEverythingOnSIGTERM(t *testing.T) {
	e := newEnv(t, 1)
	agent := e.startAgent("node-a", "--handover-timeout=1s")
	v4, v6 := lab.VIPv4(3), lab.VIPv6(3)
	e.createVIP("a", v4.String(), "")
	e.createVIP("b", v6.String(), "")
	e.setOwner("a", "node-a")
	e.setOwner("b", "node-a")
	e.waitAddress("node-a", v4, true, 5*time.Second)
	e.waitAddress("node-a", v6, true, 5*time.Second)
	if err := agent.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := agent.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if agent.Err() != nil {
		t.Errorf("agent exited with %v:\n%s", agent.Err(), agent.Log())
	}
	e.waitAddress("node-a", v4, false, 0)
	e.waitAddress("node-a", v6, false, 0)
}

func TestAgentSaysWhyItCannotHoldAVIP(t *testing.T) {
	e := newEnv(t, 1)
	agent := e.startAgent("node-a")
	e.createVIP("no-such-nic", lab.VIPv4(4).String(), "nope0")
	e.createVIP("no-subnet", "198.19.200.1", "")
	e.setOwner("no-such-nic", "node-a")
	e.setOwner("no-subnet", "node-a")
	deadline := time.Now().Add(5 * time.Second)
	for {
		log := agent.Log()
		if strings.Contains(log, `VIP 198.18.0.104: interface \"nope0\": no such interface on this node`) &&
			strings.Contains(log, "VIP 198.19.200.1: no interface on this node has a subnet containing the address") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent log does not say why it cannot hold the VIPs:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Count(agent.Log(), "cannot hold VIP") != 2 {
		t.Errorf("each failure should be logged once, not on every resync:\n%s", agent.Log())
	}
	// And `kubectl describe vip` says it too.
	e.waitEvent("VirtualIP", "no-such-nic", "BindFailed", 5*time.Second, "node-a cannot hold the address", "nope0")
}
