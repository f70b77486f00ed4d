// Package e2e runs Vigil's real binaries in the lab and checks what a client sees.
package e2e

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"vigil.dev/vigil/agent/address"
	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/test/lab"
)

type env struct {
	t     *testing.T
	l     *lab.Lab
	c     client.Client
	vigil string
}

func newEnv(t *testing.T, nodes int) *env {
	t.Helper()
	return newEnvWith(t, lab.Config{Nodes: nodes})
}

// newEnvWith brings up a lab of that configuration, with Vigil built.
func newEnvWith(t *testing.T, cfg lab.Config) *env {
	t.Helper()
	l := lab.ForTest(t, cfg)
	c, err := l.KubeClient()
	if err != nil {
		t.Fatal(err)
	}
	vigil, err := l.BuildVigil()
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, l: l, c: c, vigil: vigil}
}

func (e *env) startAgent(node string, args ...string) *lab.Process {
	e.t.Helper()
	p, err := e.l.StartAgent(e.vigil, node, append([]string{"--zap-log-level=debug"}, args...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) createVIP(name, addr, iface string) {
	e.t.Helper()
	vip := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: vigilv1.VirtualIPSpec{Address: addr, Interface: iface}}
	if err := e.c.Create(context.Background(), vip); err != nil {
		e.t.Fatal(err)
	}
}

// setOwner writes status.owner as the controller will once election exists.
func (e *env) setOwner(name, node string) {
	e.t.Helper()
	var vip vigilv1.VirtualIP
	if err := e.c.Get(context.Background(), client.ObjectKey{Name: name}, &vip); err != nil {
		e.t.Fatal(err)
	}
	patch := client.MergeFrom(vip.DeepCopy())
	vip.Status.Owner = node
	vip.Status.Epoch++
	if err := e.c.Status().Patch(context.Background(), &vip, patch); err != nil {
		e.t.Fatal(err)
	}
}

func url(a netip.Addr) string { return fmt.Sprintf("http://%s/", net.JoinHostPort(a.String(), "80")) }

func mustAddr(s fmt.Stringer) netip.Addr { return netip.MustParseAddr(s.String()) }

// waitAnswer waits until the client's GET to addr is answered by node.
func (e *env) waitAnswer(addr netip.Addr, node string, within time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < within {
		body, err := e.l.Get(context.Background(), url(addr), 200*time.Millisecond)
		if err == nil && body == node {
			return time.Since(start)
		}
		last = fmt.Sprintf("%q, %v", body, err)
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("%s not answered by %s within %v (last: %s)", addr, node, within, last)
	return 0
}

func (e *env) addresses(node string) string {
	e.t.Helper()
	out, err := e.l.Exec(node, "ip", "-o", "addr", "show", "dev", lab.NodeInterface)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) waitAddress(node string, addr netip.Addr, present bool, within time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		has := strings.Contains(e.addresses(node), " "+addr.String()+"/")
		if has == present {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: address %s present=%v after %v, want %v:\n%s", node, addr, has, within, present, e.addresses(node))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

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

// waitEvent waits for an Event with that reason about the named object (VirtualIPs and
// NodeAgents are cluster-scoped: their Events live in the default namespace), whose note
// contains every one of words, and returns the note.
func (e *env) waitEvent(kind, name, reason string, within time.Duration, words ...string) string {
	e.t.Helper()
	return e.waitEventOn([]string{kind}, name, reason, within, words...).Note
}

// waitEventOn is waitEvent for an Event about an object of any of kinds with that name (an
// agent records on its NodeAgent, or on its Node before the NodeAgent exists), and returns
// the Event.
func (e *env) waitEventOn(kinds []string, name, reason string, within time.Duration, words ...string) eventsv1.Event {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ev, seen := e.findEventOn(kinds, name, reason, words...)
		if ev != nil {
			return *ev
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no %s Event about %v %s within %v; seen: %q", reason, kinds, name, within, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// findEventOn looks once for the Event waitEventOn waits for; it also returns every other
// Event about the object, as "kind reason: note".
func (e *env) findEventOn(kinds []string, name, reason string, words ...string) (*eventsv1.Event, []string) {
	e.t.Helper()
	var list eventsv1.EventList
	if err := e.c.List(context.Background(), &list, client.InNamespace("default")); err != nil {
		e.t.Fatal(err)
	}
	var seen []string
	for i, ev := range list.Items {
		if slices.Contains(kinds, ev.Regarding.Kind) && ev.Regarding.Name == name {
			if ev.Reason == reason && ev.Regarding.UID != "" && containsAll(ev.Note, words) {
				return &list.Items[i], nil
			}
			seen = append(seen, ev.Regarding.Kind+" "+ev.Reason+": "+ev.Note)
		}
	}
	return nil, seen
}

// agent is the node's running (or last) agent process.
func (e *env) agent(node string) *lab.Process {
	e.t.Helper()
	p, ok := e.l.Process(node + "/vigil-agent")
	if !ok {
		e.t.Fatalf("no agent was started on %s", node)
	}
	return p
}

// watchAddress follows addr on every node, from the kernel's notifications, until the
// test ends.
func (e *env) watchAddress(addr netip.Addr) *lab.AddressWatch {
	e.t.Helper()
	w, err := e.l.WatchAddress(addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(w.Stop)
	return w
}

// nodesWith are the nodes whose lab interface shows addr in `ip -o addr`, by name.
func (e *env) nodesWith(addr netip.Addr) []string {
	e.t.Helper()
	var out []string
	for _, n := range e.l.Nodes {
		if e.addressLine(n.Name, addr) != "" {
			out = append(out, n.Name)
		}
	}
	return out
}

// addressLine is the `ip -o addr` line of addr on node's lab interface ("" if it has none).
func (e *env) addressLine(node string, addr netip.Addr) string {
	e.t.Helper()
	for _, line := range strings.Split(e.addresses(node), "\n") {
		if strings.Contains(line, " "+addr.String()+"/") {
			return line
		}
	}
	return ""
}

// markedByVigil reports whether node's lab interface holds addr, and whether Vigil added
// it: its IFA_PROTO marker (address.Protocol), which the lab's iproute2 does not print.
func (e *env) markedByVigil(node string, addr netip.Addr) (held, vigils bool) {
	e.t.Helper()
	n, err := e.l.Node(node)
	if err != nil {
		e.t.Fatal(err)
	}
	ns, err := netns.GetFromName(n.NS)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = ns.Close() }()
	m, err := address.NewNetlink(ns)
	if err != nil {
		e.t.Fatal(err)
	}
	defer m.Close()
	links, err := m.Links()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, l := range links {
		if l.Name != lab.NodeInterface {
			continue
		}
		for _, a := range l.Addresses {
			if a.Prefix.Addr() == addr {
				return true, a.Vigil
			}
		}
	}
	return false, false
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// watchRemovals counts, from now on, the removals of addr from node's interfaces (netlink
// address events); call the returned function to read the count.
func (e *env) watchRemovals(node string, addr netip.Addr) func() int {
	e.t.Helper()
	m, err := e.l.Node(node)
	if err != nil {
		e.t.Fatal(err)
	}
	ns, err := netns.GetFromName(m.NS)
	if err != nil {
		e.t.Fatal(err)
	}
	updates := make(chan netlink.AddrUpdate, 256)
	done := make(chan struct{})
	if err := netlink.AddrSubscribeAt(ns, updates, done); err != nil {
		e.t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	go func() {
		for u := range updates {
			if !u.NewAddr && u.LinkAddress.IP.Equal(addr.AsSlice()) {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}
	}()
	e.t.Cleanup(func() { close(done); _ = ns.Close() })
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// longestRenewalInterval reads the node agent's renewal histogram: the upper bound of the
// first bucket holding every renewal interval it observed.
func (e *env) longestRenewalInterval(node string) time.Duration {
	e.t.Helper()
	ctx := context.Background()
	inst, err := e.l.Installation(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	token, err := e.l.MetricsToken(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	body, err := e.l.ScrapeMetrics(ctx, mustNode(e.t, e.l, node), &inst.Agent, true, token)
	if err != nil {
		e.t.Fatal(err)
	}
	return histogramBound(e.t, body, "vigil_agent_address_renewal_interval_seconds")
}

// histogramBound is the smallest bucket bound of the named histogram that holds all its
// observations (+Inf when only that one does).
func histogramBound(t *testing.T, metrics, name string) time.Duration {
	t.Helper()
	var count string
	type bucket struct {
		le    float64
		count string
	}
	var buckets []bucket
	for _, line := range strings.Split(metrics, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		switch {
		case strings.HasPrefix(f[0], name+"_count"):
			count = f[1]
		case strings.HasPrefix(f[0], name+"_bucket{le=\""):
			le := strings.TrimSuffix(strings.TrimPrefix(f[0], name+"_bucket{le=\""), "\"}")
			v, err := strconv.ParseFloat(le, 64)
			if err == nil {
				buckets = append(buckets, bucket{v, f[1]})
			}
		}
	}
	if count == "" || count == "0" {
		t.Fatalf("no %s observations in the scrape", name)
	}
	for _, b := range buckets {
		if b.count == count {
			return time.Duration(b.le * float64(time.Second))
		}
	}
	return time.Duration(math.MaxInt64)
}
