package e2e

// The e2e tests' helpers, all of them: the env (a lab with Vigil built and an API client)
// and what tests do through it — start Vigil, apply and read VirtualIPs, wait for answers,
// owners, addresses, events and statuses, record the client's traffic, read metrics and
// logs. The Test functions, and the bounds each file's tests assert, stay in their files.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"vigil.dev/vigil/agent/address"
	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/controllers"
	"vigil.dev/vigil/internal/membership"
	"vigil.dev/vigil/test/envtest"
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

// newVigilEnv is newEnv with Vigil started (startVigil).
func newVigilEnv(t *testing.T, nodes int) *env {
	t.Helper()
	e := newEnv(t, nodes)
	e.startVigil()
	return e
}

// newWebEnv is newVigilEnv with the VirtualIP "web" (webVIP) at addr answered; it returns
// the node that answers.
func newWebEnv(t *testing.T, nodes int, addr netip.Addr) (*env, string) {
	t.Helper()
	e := newVigilEnv(t, nodes)
	e.apply(webVIP("web", addr))
	return e, e.owner(addr, 5*time.Second)
}

// installVigil installs Vigil with helmArgs added (see lab.InstallVigil).
func (e *env) installVigil(helmArgs ...string) *lab.Installation {
	e.t.Helper()
	inst, err := e.l.InstallVigil(context.Background(), helmArgs...)
	if err != nil {
		e.t.Fatal(err)
	}
	return inst
}

// installation is Vigil's installation, with the chart's defaults unless installVigil
// installed it.
func (e *env) installation() *lab.Installation {
	e.t.Helper()
	inst, err := e.l.Installation(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return inst
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

// nodeNS opens node's network namespace; the caller closes it.
func (e *env) nodeNS(node string) netns.NsHandle {
	e.t.Helper()
	n, err := e.l.Node(node)
	if err != nil {
		e.t.Fatal(err)
	}
	ns, err := netns.GetFromName(n.NS)
	if err != nil {
		e.t.Fatal(err)
	}
	return ns
}

// markedByVigil reports whether node's lab interface holds addr, and whether Vigil added
// it: its IFA_PROTO marker (address.Protocol), which the lab's iproute2 does not print.
func (e *env) markedByVigil(node string, addr netip.Addr) (held, vigils bool) {
	e.t.Helper()
	ns := e.nodeNS(node)
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
	ns := e.nodeNS(node)
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
	inst := e.installation()
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

// startVigil runs the controller and an agent on every node, with default settings: a
// dead node is noticed through memberlist, not the 30 s heartbeat timeout.
func (e *env) startVigil() {
	e.t.Helper()
	if _, err := e.l.StartController(e.vigil); err != nil {
		e.t.Fatal(err)
	}
	for _, n := range e.l.Nodes {
		e.startAgent(n.Name)
	}
	if err := e.l.WaitForVigil(20 * time.Second); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) apply(vip *vigilv1.VirtualIP) {
	e.t.Helper()
	if err := e.c.Create(context.Background(), vip); err != nil {
		e.t.Fatal(err)
	}
}

func webVIP(name string, addr fmt.Stringer, mutate ...func(*vigilv1.VirtualIP)) *vigilv1.VirtualIP {
	v := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: vigilv1.VirtualIPSpec{
		Address: addr.String(),
		HealthChecks: []vigilv1.HealthCheck{{Name: "web", TCP: &vigilv1.TCPCheck{Host: "127.0.0.1", Port: lab.HTTPPort},
			Interval: metav1.Duration{Duration: 200 * time.Millisecond}, FailureThreshold: 3, SuccessThreshold: 1}},
	}}
	for _, m := range mutate {
		m(v)
	}
	return v
}

func (e *env) get(name string) *vigilv1.VirtualIP {
	e.t.Helper()
	var v vigilv1.VirtualIP
	if err := e.c.Get(context.Background(), client.ObjectKey{Name: name}, &v); err != nil {
		e.t.Fatal(err)
	}
	return &v
}

// owner waits until the client is answered through addr and returns who answers.
func (e *env) owner(addr fmt.Stringer, within time.Duration) string {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if body, err := e.l.Get(context.Background(), url(mustAddr(addr)), 200*time.Millisecond); err == nil {
			return body
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("%s never answered within %v", addr, within)
	return ""
}

// chaosDuration is how long TestChaos injects faults: 2 minutes, or
// $VIGIL_CHAOS_DURATION (a Go duration such as 5m).
func chaosDuration(t *testing.T) time.Duration {
	v := os.Getenv("VIGIL_CHAOS_DURATION")
	if v == "" {
		return 2 * time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > lab.MaxChaosDuration {
		t.Fatalf("VIGIL_CHAOS_DURATION=%q: want a duration up to %v", v, lab.MaxChaosDuration)
	}
	return d
}

// chaosSeed is $VIGIL_CHAOS_SEED, to replay a failed run's schedule, or one from the clock.
func chaosSeed(t *testing.T) uint64 {
	v := os.Getenv("VIGIL_CHAOS_SEED")
	if v == "" {
		return uint64(time.Now().UnixNano())
	}
	seed, err := strconv.ParseUint(v, 10, 64)
	if err != nil || seed == 0 {
		t.Fatalf("VIGIL_CHAOS_SEED=%q: want a positive integer", v)
	}
	return seed
}

// expectNoUndecryptable: no member received a packet or stream it could not decrypt,
// which is how a key split shows (memberlist logs it as an error).
func (e *env) expectNoUndecryptable(during string) {
	e.t.Helper()
	procs := []string{"cp/vigil-controller"}
	for _, n := range e.l.Nodes {
		procs = append(procs, n.Name+"/vigil-agent")
	}
	for _, name := range procs {
		p, ok := e.l.Process(name)
		if !ok {
			e.t.Fatalf("no process %s", name)
		}
		if line := firstLine(p.Log(), "", "no installed keys could decrypt"); line != "" {
			e.t.Errorf("%s could not decrypt a member's message during %s: %s", name, during, line)
		}
	}
}

// expectListenersOnTheNodeAddress: the agent's metrics, health and memberlist sockets
// listen on the node's address (the chart's --bind-address=$(HOST_IP)), none on all
// addresses.
func (e *env) expectListenersOnTheNodeAddress(node string, inst *lab.Installation) {
	e.t.Helper()
	n, err := e.l.Node(node)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := e.l.Exec(node, "ss", "-Hlntu")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, port := range []int{inst.Agent.MetricsPort, inst.Agent.HealthPort, 7952} {
		var locals []string
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasSuffix(f[4], ":"+strconv.Itoa(port)) {
				locals = append(locals, f[0]+" "+f[4])
			}
		}
		for _, l := range locals {
			if !strings.HasSuffix(l, " "+n.IPv4.String()+":"+strconv.Itoa(port)) {
				e.t.Errorf("%s: port %d listens on %s, want %s only", node, port, l, n.IPv4)
			}
		}
		if len(locals) == 0 {
			e.t.Errorf("%s: nothing listens on port %d:\n%s", node, port, out)
		}
	}
}

// member is a memberlist member of Vigil: an agent or the controller, and where it runs.
type member struct {
	m *lab.Member
	w *lab.Workload
}

func (e *env) memberlistMembers(inst *lab.Installation) map[string]member {
	out := map[string]member{"controller": {e.l.ControlPlane, &inst.Controller}}
	for _, n := range e.l.Nodes {
		out[n.Name] = member{n, &inst.Agent}
	}
	return out
}

func (e *env) readKeys() [][]byte {
	e.t.Helper()
	keys, err := membership.ReadKeys(context.Background(), e.c, lab.VigilNamespace)
	if err != nil {
		e.t.Fatal(err)
	}
	return keys
}

// rotationShell defines what docs/operations.md's rotation defines.
const rotationShell = `replace() { kubectl -n $NS create secret generic vigil-memberlist --from-file=keys="$1" --dry-run=client -o yaml | kubectl replace -f -; }`

// shell runs a script of the documented rotation in dir, with kubectl and the admin's
// kubeconfig, inside the control-plane namespace (where the API server is).
func (e *env) shell(dir, script string) {
	e.t.Helper()
	full := fmt.Sprintf("set -euo pipefail\ncd %q\nexport PATH=%q:$PATH KUBECONFIG=%q NS=%s\n%s\n%s\n",
		dir, e.l.Assets, e.l.Kubeconfig, lab.VigilNamespace, rotationShell, script)
	if out, err := e.l.Exec("cp", "bash", "-c", full); err != nil {
		e.t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

func readKeyFile(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := membership.ParseKeys(map[string][]byte{"keys": b})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return keys
}

var keySeries = regexp.MustCompile(`(?m)^vigil_memberlist_keys\{fingerprint="([0-9a-f]+)",primary="(true|false)"\} 1$`)

// keyring is a member's vigil_memberlist_keys: fingerprints, the primary first.
func (e *env) keyring(m member) ([]string, error) {
	body, err := e.l.ScrapeMetrics(context.Background(), m.m, m.w, false, "")
	if err != nil {
		return nil, err
	}
	var primary, others []string
	for _, s := range keySeries.FindAllStringSubmatch(body, -1) {
		if s[2] == "true" {
			primary = append(primary, s[1])
		} else {
			others = append(others, s[1])
		}
	}
	slices.Sort(others)
	return append(primary, others...), nil
}

// waitKeyring waits until every member's metric shows the keyring, as an operator would.
func (e *env) waitKeyring(members map[string]member, keys [][]byte, within time.Duration) {
	e.t.Helper()
	want := []string{membership.Fingerprint(keys[0])}
	for _, k := range keys[1:] {
		want = append(want, membership.Fingerprint(k))
	}
	slices.Sort(want[1:])
	deadline := time.Now().Add(within)
	for name, m := range members {
		for {
			got, err := e.keyring(m)
			if err == nil && slices.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("%s: vigil_memberlist_keys %v (%v) after %v, want %v", name, got, err, within, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// memberlistCounters are, per member, its members by state and the dead messages it
// processed.
func (e *env) memberlistCounters(members map[string]member) map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for name, m := range members {
		body, err := e.l.ScrapeMetrics(context.Background(), m.m, m.w, false, "")
		if err != nil {
			e.t.Fatal(err)
		}
		out[name] = fmt.Sprintf("alive %s, dead %s, dead messages %s",
			sample(body, `vigil_memberlist_members{state="alive"}`), sample(body, `vigil_memberlist_members{state="dead"}`),
			sample(body, `vigil_memberlist_messages_total{type="dead"}`))
	}
	return out
}

// expectUnchanged: every member still sees the others alive, and nobody died meanwhile.
func (e *env) expectUnchanged(members map[string]member, before map[string]string, during string) {
	e.t.Helper()
	want := fmt.Sprintf("alive %d, dead 0, dead messages 0", len(members))
	for name, now := range e.memberlistCounters(members) {
		if now != before[name] || now != want {
			e.t.Errorf("%s: memberlist %q before %s, %q after; want %q throughout", name, before[name], during, now, want)
		}
	}
}

// sample is the value of one series in a /metrics body, "0" when absent.
func sample(body, series string) string {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return strconv.FormatFloat(f, 'f', -1, 64)
			}
		}
	}
	return "0"
}

func failures(samples []lab.Sample) int {
	n := 0
	for _, s := range samples {
		if !s.OK {
			n++
		}
	}
	return n
}

// firstLine is the first line of s that starts with prefix and contains every one of words.
func firstLine(s, prefix string, words ...string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) && containsAll(line, words) {
			return line
		}
	}
	return ""
}

// servedVIP is a VIP the client requests all along, with its address watched on every node.
type servedVIP struct {
	name  string
	addr  netip.Addr
	owner string
	epoch int64
	rec   *lab.Recorder
	watch *lab.AddressWatch
}

// serve applies vip unless it exists, waits until it is answered and Ready, and starts
// recording the client's requests to it.
func (e *env) serve(vip *vigilv1.VirtualIP) *servedVIP {
	e.t.Helper()
	addr := netip.MustParseAddr(vip.Spec.Address)
	if err := e.c.Get(context.Background(), client.ObjectKeyFromObject(vip), &vigilv1.VirtualIP{}); apierrors.IsNotFound(err) {
		e.apply(vip)
	}
	owner := e.owner(addr, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for s := e.get(vip.Name).Status; s.Owner != owner || meta.FindStatusCondition(s.Conditions, vigilv1.ConditionReady).Status != metav1.ConditionTrue; s = e.get(vip.Name).Status {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: status %+v, want Ready on %s", vip.Name, s, owner)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // standbys reported
	v := &servedVIP{name: vip.Name, addr: addr, owner: owner, epoch: e.get(vip.Name).Status.Epoch, watch: e.watchAddress(addr)}
	v.rec = e.record(addr, 3*time.Minute)
	e.waitSteady(v.rec, 50)
	return v
}

// expectBlipHarmless stops the API server for apiBlipLength and checks that, from then
// until the controller leads again and afterBlipWatch has passed, the client saw no failed
// request and no other node answering, no node bound or released any of vips, and no
// running agent fenced itself.
func (e *env) expectBlipHarmless(vips ...*servedVIP) {
	e.t.Helper()
	began, ended := e.apiBlip(apiBlipLength)
	leads := e.waitControllerLeads(ended, controllerReturnBudget)
	time.Sleep(afterBlipWatch)
	e.t.Logf("API server stopped for %v; a controller leads %v after it resumed", ended.Sub(began).Round(time.Millisecond), leads.Sub(ended).Round(time.Millisecond))
	for _, n := range e.l.Nodes {
		if p, ok := e.l.Process(n.Name + "/vigil-agent"); ok && p.Running() {
			for _, line := range logSince(p.Log(), began, "isolated:") {
				e.t.Errorf("%s's agent fenced itself in the API blip: %s", n.Name, line)
			}
		}
	}
	for _, v := range vips {
		samples, err := v.rec.Stop()
		if err != nil {
			e.t.Fatal(err)
		}
		o := lab.AnalyzeFault(samples, began, "")
		requests := 0
		for _, s := range samples {
			if !s.Start.Before(began) {
				requests++
			}
		}
		e.t.Logf("%s on %s: %d requests from the API server's stop on, %d failed, %d moves", v.name, v.owner, requests, o.Failed, o.Moves)
		if o.Failed != 0 || o.Moves != 0 || requests < 500 {
			e.t.Errorf("%s: %d failed of %d requests (%s), %d moves across an API blip of %v; want none",
				v.name, o.Failed, requests, o.Failures(began), o.Moves, apiBlipLength)
		}
		for _, c := range v.watch.Changes() {
			if !c.At.Before(began) {
				e.t.Errorf("%s: %s %s %v after the API server stopped (added %v)", v.name, c.Node, v.addr, c.At.Sub(began).Round(time.Millisecond), c.Added)
			}
		}
		if err := v.watch.Err(); err != nil {
			e.t.Error(err)
		}
		if s := e.get(v.name).Status; s.Owner != v.owner || s.Epoch != v.epoch {
			e.t.Errorf("%s: owner %s at epoch %d before the blip, %s at %d after (%+v)", v.name, v.owner, v.epoch, s.Owner, s.Epoch, s.LastTransition)
		}
	}
}

// record starts the client's requests to addr (every 10 ms, 500 ms timeout) for d, or
// until the test ends.
func (e *env) record(addr netip.Addr, d time.Duration) *lab.Recorder {
	e.t.Helper()
	return e.recordWith(lab.RecordOptions{URL: url(addr), Duration: d, Timeout: 500 * time.Millisecond})
}

// recordWith starts the client's requests with those options, stopped when the test ends
// if not before.
func (e *env) recordWith(opts lab.RecordOptions) *lab.Recorder {
	e.t.Helper()
	rec, err := e.l.StartRecorder(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _, _ = rec.Stop() })
	return rec
}

// waitSteady waits until the client has made more than requests requests and the last
// was answered: the recording starts from steady traffic.
func (e *env) waitSteady(rec *lab.Recorder, requests int) {
	e.t.Helper()
	if _, err := rec.WaitFor(5*time.Second, func(s []lab.Sample) bool { return len(s) > requests && s[len(s)-1].OK }); err != nil {
		e.t.Fatal(err)
	}
}

// failedOver waits until a request started after fault is answered by another node than
// node, and returns the outage the client saw; what names the fault in the failure
// message.
func (e *env) failedOver(rec *lab.Recorder, fault time.Time, node string, within time.Duration, what string) lab.Outage {
	e.t.Helper()
	samples, err := rec.WaitFor(within, func(s []lab.Sample) bool { return lab.AnalyzeFault(s, fault, node).Recovered })
	if err != nil {
		e.t.Fatalf("%s: no other node than %s answered within %v: %v", what, node, within, err)
	}
	return lab.AnalyzeFault(samples, fault, node)
}

// answeredAfter waits until a request answers after since (from node, or anyone when node
// is "") and returns how long after since the first such answer came, and from whom.
func (e *env) answeredAfter(rec *lab.Recorder, since time.Time, node string, within time.Duration) (time.Duration, string) {
	e.t.Helper()
	var first *lab.Sample
	samples, err := rec.WaitFor(within, func(s []lab.Sample) bool {
		for i := range s {
			if s[i].OK && s[i].End.After(since) && (node == "" || s[i].Node == node) && (first == nil || s[i].End.Before(first.End)) {
				first = &s[i]
			}
		}
		return first != nil
	})
	if err != nil {
		e.t.Fatalf("never answered (by %q) within %v: %v (%d failed of %d requests)", node, within, err, failures(samples), len(samples))
	}
	return first.End.Sub(since), first.Node
}

func (e *env) deleteVIP(name string) time.Time {
	e.t.Helper()
	vip := e.get(name)
	at := time.Now()
	if err := e.c.Delete(context.Background(), vip); err != nil {
		e.t.Fatal(err)
	}
	for {
		err := e.c.Get(context.Background(), client.ObjectKey{Name: name}, &vigilv1.VirtualIP{})
		if apierrors.IsNotFound(err) {
			return at
		}
		if time.Since(at) > 10*time.Second {
			e.t.Fatalf("VirtualIP %s still there 10s after its deletion: %v", name, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReleased waits until no node holds the watched address, and fails the test if that
// took longer than within after since.
func (e *env) waitReleased(w *lab.AddressWatch, since time.Time, within time.Duration) {
	e.t.Helper()
	if _, ok := w.WaitFor(within+5*time.Second, func([]lab.AddressChange) bool { return len(w.Holders()) == 0 }); !ok {
		e.t.Fatalf("%s still held by %v %v after its VirtualIP was deleted", w.Addr, w.Holders(), time.Since(since).Round(time.Millisecond))
	}
	if took := e.releasedAfter(w, since); took > within {
		e.t.Errorf("%s released %v after its VirtualIP was deleted, want within %v", w.Addr, took.Round(time.Millisecond), within)
	}
}

// releasedAfter is how long after since the last node let the watched address go.
func (e *env) releasedAfter(w *lab.AddressWatch, since time.Time) time.Duration {
	var last time.Time
	for _, c := range w.Changes() {
		if !c.Added && c.At.After(since) && c.At.After(last) {
			last = c.At
		}
	}
	if last.IsZero() {
		return 0
	}
	return last.Sub(since)
}

// waitNewObjectReady waits until the VirtualIP is another object than the one with oldUID
// and is Ready at epoch 1, and returns its owner.
func (e *env) waitNewObjectReady(name string, oldUID types.UID, within time.Duration) string {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := e.get(name)
		ready := meta.FindStatusCondition(v.Status.Conditions, vigilv1.ConditionReady)
		if v.UID != oldUID && v.Status.Owner != "" && v.Status.Epoch == 1 && ready != nil && ready.Status == metav1.ConditionTrue {
			return v.Status.Owner
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("VirtualIP %s (uid %s, old %s): status %+v after %v, want Ready at epoch 1", name, v.UID, oldUID, v.Status, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) waitStatusNotOwner(name, node string, within time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for s := e.get(name).Status; s.Owner == node || s.Owner == ""; s = e.get(name).Status {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: owner %q after %v, want another node than %s", name, s.Owner, within, node)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitNodeAgents waits until n agents have reported their NodeAgents.
func (e *env) waitNodeAgents(n int, within time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for len(e.nodeAgentNames()) < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("NodeAgents %v after %v, want %d", e.nodeAgentNames(), within, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) nodeAgentNames() []string {
	e.t.Helper()
	var list vigilv1.NodeAgentList
	if err := e.c.List(context.Background(), &list); err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, a := range list.Items {
		names = append(names, a.Name)
	}
	slices.Sort(names)
	return names
}

// handoverWindows lists the live elements of the act-* sets (one per forwarded VIP, timed
// out by the kernel when the drain window ends) of the node's table netdev vigil-handover,
// with the whole listing; no table lists none.
func (e *env) handoverWindows(node string) (live []string, listing string) {
	e.t.Helper()
	out, err := e.l.Exec(node, "nft", "list", "table", "netdev", "vigil-handover")
	if err != nil {
		return nil, err.Error()
	}
	inAct := false
	for _, line := range strings.Split(out, "\n") {
		l := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(l, "set act-"):
			inAct = true
		case inAct && l == "}":
			inAct = false
		case inAct && strings.HasPrefix(l, "elements = "):
			live = append(live, l)
		}
	}
	return live, out
}

// logSince are the lines of a JSON log written at or after since that contain every one of
// words.
func logSince(log string, since time.Time, words ...string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		var entry struct {
			TS time.Time `json:"ts"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && !entry.TS.Before(since) && containsAll(line, words) {
			out = append(out, line)
		}
	}
	return out
}

// firstChange is the first change of addr on node after since that added it (added) or
// removed it; nil if none.
func firstChange(changes []lab.AddressChange, node string, added bool, since time.Time) *lab.AddressChange {
	for i := range changes {
		if c := &changes[i]; c.Node == node && c.Added == added && c.At.After(since) {
			return c
		}
	}
	return nil
}

// spread is "min/median/max" of ds.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("min %v / median %v / max %v", r(slices.Min(ds)), r(lab.Percentile(ds, 50)), r(slices.Max(ds)))
}

func sortedNodes(nodes ...string) []string {
	slices.Sort(nodes)
	return slices.Compact(nodes)
}

// apiBlip stops kube-apiserver (SIGSTOP) for d and resumes it: what an overloaded or
// restarting API server looks like to its clients. It returns when the outage began and
// ended; the API server is resumed even if the test fails meanwhile.
func (e *env) apiBlip(d time.Duration) (began, ended time.Time) {
	e.t.Helper()
	began, resume := e.stopAPIServer()
	time.Sleep(d)
	resume()
	return began, time.Now()
}

// stopAPIServer stops kube-apiserver (SIGSTOP) and returns when, and resume, which
// resumes it (SIGCONT). The API server is resumed when the test ends if resume was not
// called: a failed test leaves no stopped API server to the lab's teardown.
func (e *env) stopAPIServer() (stopped time.Time, resume func()) {
	e.t.Helper()
	api, err := e.l.APIServer()
	if err != nil {
		e.t.Fatal(err)
	}
	stopped = time.Now()
	if err := api.Signal(syscall.SIGSTOP); err != nil {
		e.t.Fatal(err)
	}
	resumed := false
	e.t.Cleanup(func() {
		if !resumed {
			_ = api.Signal(syscall.SIGCONT)
		}
	})
	return stopped, func() {
		e.t.Helper()
		resumed = true
		if err := api.Signal(syscall.SIGCONT); err != nil {
			e.t.Fatal(err)
		}
	}
}

// waitControllerLeads waits until a controller has renewed the leader Lease after since
// (an outage longer than its renew deadline makes it exit and a new one elect itself), and
// returns when.
func (e *env) waitControllerLeads(since time.Time, within time.Duration) time.Time {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var lease coordinationv1.Lease
		err := e.c.Get(context.Background(), client.ObjectKey{Namespace: lab.VigilNamespace, Name: controllers.LeaderElectionID}, &lease)
		if err == nil && lease.Spec.RenewTime != nil && lease.Spec.RenewTime.After(since) &&
			lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
			return time.Now()
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no controller renewed its leader Lease within %v after %v (%v, %+v)", within, since.Format(time.StampMilli), err, lease.Spec)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func preferNode(node string, priority int32) func(*vigilv1.VirtualIP) {
	return func(v *vigilv1.VirtualIP) {
		v.Spec.Priorities = append(v.Spec.Priorities, vigilv1.PriorityRule{
			NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/hostname": node}}, Priority: priority})
	}
}

func (e *env) waitStatusOwner(name, node string, within time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	for e.get(name).Status.Owner != node {
		if time.Since(start) > within {
			e.t.Fatalf("%s: owner %q after %v, want %s", name, e.get(name).Status.Owner, within, node)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func nonEmpty(s []lab.PromSample) bool { return len(s) > 0 }

func (e *env) waitQuery(p *lab.Prometheus, q string, ok func([]lab.PromSample) bool, within time.Duration) []lab.PromSample {
	e.t.Helper()
	deadline := time.Now().Add(within)
	var last []lab.PromSample
	var err error
	for time.Now().Before(deadline) {
		if last, err = p.Query(context.Background(), q); err == nil && ok(last) {
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("%s: %v, %v after %v", q, last, err, within)
	return nil
}

func mustNode(t *testing.T, l *lab.Lab, name string) *lab.Member {
	t.Helper()
	m, err := l.Node(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// promtoolCheckMetrics runs `promtool check metrics` (from `make tools`) on a scrape.
func promtoolCheckMetrics(t *testing.T, who, body string) {
	t.Helper()
	cmd := exec.Command(envtest.Tool(t, "promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics on %s's /metrics: %v\n%s", who, err, out)
	}
	if !strings.Contains(body, "vigil_build_info{") {
		t.Errorf("%s exposes no vigil_build_info", who)
	}
}

func (e *env) clientFor(kubeconfig string) client.Client {
	e.t.Helper()
	if kubeconfig == "" {
		e.t.Fatal("no kubeconfig")
	}
	c, err := e.l.ClientFor(kubeconfig)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// unboundToken writes a kubeconfig with a token of the ServiceAccount bound to no object.
func (e *env) unboundToken(ctx context.Context, sa string) string {
	e.t.Helper()
	cfg, err := e.l.RESTConfig()
	if err != nil {
		e.t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(lab.VigilNamespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	path, err := e.l.WriteKubeconfig(sa+"-unbound", tr.Status.Token)
	if err != nil {
		e.t.Fatal(err)
	}
	return path
}

// patchHeartbeat renews the NodeAgent's heartbeat as the agent does: a merge patch of status.
func patchHeartbeat(ctx context.Context, c client.Client, node string) error {
	na := &vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: node}}
	patch := []byte(`{"status":{"heartbeatTime":"` + metav1.Now().UTC().Format("2006-01-02T15:04:05Z") + `"}}`)
	return c.Status().Patch(ctx, na, client.RawPatch(types.MergePatchType, patch))
}

func expectDenied(t *testing.T, what string, err error, message string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: admitted, want denied", what)
	case !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), message):
		t.Errorf("%s: %v, want Forbidden with %q", what, err, message)
	default:
		t.Logf("%s: %v", what, err)
	}
}

// startRecorder records the client's requests to addr until they are answered steadily.
func (e *env) startRecorder(addr netip.Addr) *lab.Recorder {
	e.t.Helper()
	rec := e.recordWith(lab.RecordOptions{URL: url(addr), Duration: 2 * time.Minute, Timeout: 300 * time.Millisecond})
	e.waitSteady(rec, 20)
	return rec
}

// serveFromNodeA applies the VirtualIP "web" at vip, preferring node-a; waits until node-a
// owns it, Ready with 2 standbys, and answers for it; gives every agent a second to see the
// standbys; and starts recording the client's requests. It returns the status and the
// recorder.
func (e *env) serveFromNodeA(vip netip.Addr) (vigilv1.VirtualIPStatus, *lab.Recorder) {
	e.t.Helper()
	e.apply(webVIP("web", vip, preferNode("node-a", 200)))
	status, _ := e.waitStatus("web", 10*time.Second, "node-a Ready with 2 standbys", func(s vigilv1.VirtualIPStatus) bool {
		return readyOn("node-a")(s) && len(s.Standbys) == 2
	})
	e.waitAnswer(vip, "node-a", 5*time.Second)
	time.Sleep(time.Second)
	return status, e.startRecorder(vip)
}

// waitStatus waits until the VirtualIP's status satisfies ok and returns it and how long
// that took; want describes ok for the failure message.
func (e *env) waitStatus(name string, within time.Duration, want string, ok func(vigilv1.VirtualIPStatus) bool) (vigilv1.VirtualIPStatus, time.Duration) {
	e.t.Helper()
	start := time.Now()
	for {
		s := e.get(name).Status
		if ok(s) {
			return s, time.Since(start)
		}
		if time.Since(start) > within {
			e.t.Fatalf("%s: status %s after %v, want %s", name, describeStatus(s), within, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describeStatus(s vigilv1.VirtualIPStatus) string {
	ready := meta.FindStatusCondition(s.Conditions, vigilv1.ConditionReady)
	return fmt.Sprintf("{owner %q epoch %d standbys %v interface %q lastTransition %+v Ready %+v}",
		s.Owner, s.Epoch, s.Standbys, s.Interface, s.LastTransition, ready)
}

// readyOn: the status names node the owner and the owner reports the address bound.
func readyOn(node string) func(vigilv1.VirtualIPStatus) bool {
	return func(s vigilv1.VirtualIPStatus) bool {
		c := meta.FindStatusCondition(s.Conditions, vigilv1.ConditionReady)
		return s.Owner == node && c != nil && c.Status == metav1.ConditionTrue
	}
}

// report is node's NodeAgent report on the VirtualIP named vip (nil when none).
func (e *env) report(node, vip string) *vigilv1.VIPEligibility {
	e.t.Helper()
	var a vigilv1.NodeAgent
	var v vigilv1.VirtualIP
	if err := errors.Join(e.c.Get(context.Background(), client.ObjectKey{Name: node}, &a), e.c.Get(context.Background(), client.ObjectKey{Name: vip}, &v)); err != nil {
		e.t.Fatal(err)
	}
	return a.Status.Report(&v, time.Now())
}

// nodesHolding returns the nodes (of those named, every node when none is) whose kernel has
// addr on any interface: `ip -o addr` in each.
func (e *env) nodesHolding(addr netip.Addr, nodes ...string) []string {
	e.t.Helper()
	h, err := e.l.Holders(addr, nodes...)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// waitNodesHolding waits until exactly want (of the nodes named) hold addr.
func (e *env) waitNodesHolding(addr netip.Addr, within time.Duration, want []string, nodes ...string) time.Duration {
	e.t.Helper()
	start := time.Now()
	for {
		got := e.nodesHolding(addr, nodes...)
		if slices.Equal(got, want) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			e.t.Fatalf("%s held by %v after %v, want %v", addr, got, within, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// carrierBack gives node-a's eth1 its carrier back and checks that node-a reports itself
// eligible again and that the VIP stays on owner (preemption: Never) at epoch.
func (e *env) carrierBack(rec *lab.Recorder, vip netip.Addr, owner string, epoch int64) {
	e.t.Helper()
	back := time.Now()
	if err := e.l.SetCarrier("node-a", lab.SecondInterface, true); err != nil {
		e.t.Fatal(err)
	}
	// The agent watches its links: the carrier's return is seen at once, as its loss was.
	// Waited for longer than that, to measure it when it is late.
	var late *vigilv1.VIPEligibility
	for {
		r := e.report("node-a", "storage")
		if r != nil && r.Eligible {
			took := time.Since(back)
			e.t.Logf("eth1 carrier of node-a back -> node-a reports itself eligible after %v", took.Round(time.Millisecond))
			if took > eligibleAgainBudget {
				e.t.Errorf("node-a eligible again only %v after its carrier returned, want within %v; until then it reported %+v",
					took.Round(time.Millisecond), eligibleAgainBudget, late)
			}
			break
		}
		late = r
		if time.Since(back) > 45*time.Second {
			e.t.Fatalf("node-a not eligible 45s after its carrier returned: %+v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // preemption would have happened by now
	if s := e.get("storage").Status; s.Owner != owner || s.Epoch != epoch {
		e.t.Errorf("with preemption: Never the VIP moved after node-a's carrier returned: %s, want %s at epoch %d", describeStatus(s), owner, epoch)
	}
	if h := e.nodesHolding(vip); !slices.Equal(h, []string{owner}) {
		e.t.Errorf("%s held by %v after node-a's carrier returned, want %s only", vip, h, owner)
	}
	samples, err := rec.Stop()
	if err != nil {
		e.t.Fatal(err)
	}
	if o := lab.AnalyzeFault(samples, back, owner); o.Failed != 0 || o.Moves != 0 {
		e.t.Errorf("after node-a's carrier returned: %d failed requests (%s), %d moves; want none", o.Failed, o.Failures(back), o.Moves)
	}
}

// leads reports whether a leader Lease holder identity names the replica pod (a replica
// leads under its pod's name, $POD_NAME).
func leads(holder, pod string) bool { return holder == pod }

// startReplica runs a replica of the controller Deployment on node.
func (e *env) startReplica(node, pod string) {
	e.t.Helper()
	if _, err := e.l.StartControllerReplica(e.vigil, node, pod); err != nil {
		e.t.Fatal(err)
	}
}

// waitLeader waits until the replica pod holds the leader Lease and returns when.
func (e *env) waitLeader(pod string, within time.Duration) time.Time {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		holder, err := e.l.ControllerLeader(context.Background())
		if err == nil && leads(holder, pod) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s does not lead after %v: Lease held by %q (%v)", pod, within, holder, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// confirmsTakeover checks that the new leader (leading since led) confirms owner, which
// took vip over and has answered the client since answered, without moving it again, and
// that owner alone holds it.
func (e *env) confirmsTakeover(rec *lab.Recorder, vip netip.Addr, owner string, answered, led time.Time) {
	e.t.Helper()
	s, _ := e.waitStatus("web", 10*time.Second, owner+" Ready, moved by TakenOver or Elected", func(s vigilv1.VirtualIPStatus) bool {
		tr := s.LastTransition
		return readyOn(owner)(s) && tr != nil && (tr.Reason == vigilv1.ReasonTakenOver || tr.Reason == vigilv1.ReasonElected)
	})
	e.t.Logf("the new leader confirmed %s %v after it began to lead: %s", owner, time.Since(led).Round(time.Millisecond), describeStatus(s))
	if h := e.nodesHolding(vip, "node-b", "node-c"); !slices.Equal(h, []string{owner}) {
		e.t.Errorf("%s held by %v among the live nodes, want %s only", vip, h, owner)
	}
	time.Sleep(time.Second) // what the confirmation might change, the client would see by now
	samples, err := rec.Stop()
	if err != nil {
		e.t.Fatal(err)
	}
	// From just after the first answer: the moves counted are those after it.
	after := answered.Add(time.Nanosecond)
	if o := lab.AnalyzeFault(samples, after, owner); o.Failed != 0 || o.Moves != 0 {
		e.t.Errorf("after %s first answered: %d failed requests (%s), %d moves; want none", owner, o.Failed, o.Failures(after), o.Moves)
	}
}

// crashInOutage crashes node, the VIP's owner, while the API server is down, and returns
// the node that answers for it then.
func (e *env) crashInOutage(rec *lab.Recorder, node string) string {
	e.t.Helper()
	crash := time.Now()
	if err := e.l.CrashNode(node); err != nil {
		e.t.Fatal(err)
	}
	o := e.failedOver(rec, crash, node, 10*time.Second, "crash of "+node+" in the API outage")
	e.t.Logf("crash of %s in the API outage -> %s answers after %v", node, o.NewOwner, o.FirstOKAfter.Sub(crash).Round(time.Millisecond))
	return o.NewOwner
}

// oneHolderAfter checks the holder samples: within oneHolderBudget of back exactly one
// node holds the address, and it stays so for oneHolderStay. When that fails it samples on
// (up to 40 s after back), to say how long the address was held twice.
func (e *env) oneHolderAfter(sampler *lab.HolderSampler, back time.Time, taker string) {
	e.t.Helper()
	for {
		_, _, settled := lab.OneHolder(sampler.Samples(), back, oneHolderStay)
		if settled || time.Since(back) > 40*time.Second {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	samples := sampler.Stop()
	timeline := strings.Join(lab.HolderTimeline(samples, back), "\n  ")
	at, node, ok := lab.OneHolder(samples, back, oneHolderStay)
	if !ok {
		e.t.Fatalf("never one holder for %v within 40s of the API server's return; holders (from its return):\n  %s", oneHolderStay, timeline)
	}
	e.t.Logf("one holder (%s) %v after the API server returned, for %v at least; holders (from its return):\n  %s",
		node, at.Sub(back).Round(time.Millisecond), oneHolderStay, timeline)
	if at.Sub(back) > oneHolderBudget {
		e.t.Errorf("one holder only %v after the API server returned, want within %v", at.Sub(back).Round(time.Millisecond), oneHolderBudget)
	}
	if node != taker {
		e.t.Logf("the address settled on %s, not on %s, which took it over", node, taker)
	}
}

// settlesAfterOutage checks that the status settles on the node holding vip and that the
// client saw no failure after the API server returned (back). When it did, it waits (45 s
// at most) for the client to be answered again, to say how long it was cut off.
func (e *env) settlesAfterOutage(rec *lab.Recorder, vip netip.Addr, back time.Time) {
	e.t.Helper()
	holders := e.nodesHolding(vip)
	if len(holders) != 1 {
		e.t.Fatalf("%s held by %v, want one node", vip, holders)
	}
	s, took := e.waitStatus("web", 30*time.Second, holders[0]+" Ready", readyOn(holders[0]))
	e.t.Logf("status settled on %s %v later: %s", holders[0], took.Round(time.Millisecond), describeStatus(s))
	samples, err := rec.Samples()
	if err != nil {
		e.t.Fatal(err)
	}
	if o := lab.AnalyzeFault(samples, back, holders[0]); o.Failed == 0 {
		return
	}
	// The client fails now: how long for?
	samples, _ = rec.WaitFor(45*time.Second, func(s []lab.Sample) bool { return len(s) > 0 && s[len(s)-1].OK })
	if _, err := rec.Stop(); err != nil {
		e.t.Fatal(err)
	}
	o := lab.AnalyzeFault(samples, back, holders[0])
	e.t.Errorf("after the API server returned: %d failed requests (first: %s), want none; what the client saw from then on:\n  %s",
		o.Failed, o.Failures(back), strings.Join(lab.Stream(since(samples, back), time.Second), "\n  "))
}

// since are the samples started at or after t.
func since(samples []lab.Sample, t time.Time) []lab.Sample {
	i := slices.IndexFunc(samples, func(s lab.Sample) bool { return !s.Start.Before(t) })
	if i < 0 {
		return nil
	}
	return samples[i:]
}
