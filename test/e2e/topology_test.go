package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/test/lab"
)

// Bounds of these tests (chart defaults: fence-after 1 s, leader Lease 15 s, memberlist
// probes every 100 ms).
const (
	// carrierFailoverBudget: a lost carrier is seen at once (the agent watches its links),
	// reported, and the controller moves the VIP as for a failed check.
	carrierFailoverBudget = 1500 * time.Millisecond
	// eligibleAgainBudget: the carrier's return is seen as its loss is, at once; the NodeAgent
	// report follows within a few hundred ms.
	eligibleAgainBudget = 2 * time.Second
	// leaderlessFailoverBudget: with the leader dead too, the first standby takes over once
	// memberlist has declared the owner dead (a few hundred ms) and fence-after (1 s) has
	// passed, and announces.
	leaderlessFailoverBudget = 2500 * time.Millisecond
	// newLeaderBudget: a surviving replica acquires the dead leader's Lease once it has
	// seen it unrenewed for the lease duration (15 s) on its own clock; it looks every
	// retry period (2 s, jittered up to 4.4 s by client-go), so it may see the last renewal
	// one period late and acquire one period after the lease ran out.
	newLeaderBudget = 25 * time.Second
	// oneHolderBudget and oneHolderStay: after an API outage, the address has exactly one
	// holder within oneHolderBudget of the API server's return, for oneHolderStay.
	oneHolderBudget = time.Second
	oneHolderStay   = 10 * time.Second
)

// startRecorder records the client's requests to addr until they are answered steadily.
func (e *env) startRecorder(addr netip.Addr) *lab.Recorder {
	e.t.Helper()
	rec, err := e.l.StartRecorder(lab.RecordOptions{URL: url(addr), Duration: 2 * time.Minute, Timeout: 300 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _, _ = rec.Stop() })
	if _, err := rec.WaitFor(5*time.Second, func(s []lab.Sample) bool { return len(s) > 20 && s[len(s)-1].OK }); err != nil {
		e.t.Fatal(err)
	}
	return rec
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
	ready := findCond(s.Conditions, vigilv1.ConditionReady)
	return fmt.Sprintf("{owner %q epoch %d standbys %v interface %q lastTransition %+v Ready %+v}",
		s.Owner, s.Epoch, s.Standbys, s.Interface, s.LastTransition, ready)
}

// readyOn: the status names node the owner and the owner reports the address bound.
func readyOn(node string) func(vigilv1.VirtualIPStatus) bool {
	return func(s vigilv1.VirtualIPStatus) bool {
		c := findCond(s.Conditions, vigilv1.ConditionReady)
		return s.Owner == node && c != nil && c.Status == metav1.ConditionTrue
	}
}

// report is node's NodeAgent report on the VirtualIP named vip (nil when none).
func (e *env) report(node, vip string) *vigilv1.VIPEligibility {
	e.t.Helper()
	var a vigilv1.NodeAgent
	if err := e.c.Get(context.Background(), client.ObjectKey{Name: node}, &a); err != nil {
		e.t.Fatal(err)
	}
	return a.Status.Report(vip)
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

// A VIP on the second network moves when its owner's eth1 loses carrier, while eth0 (API
// server, peers) stays up: the agent watches its links, and an interface without carrier
// makes the node ineligible, as keepalived's FAULT state would. When the carrier returns
// the node is eligible again and, with preemption: Never, the VIP stays where it is.
func TestSecondNetworkCarrierLossMovesTheVIP(t *testing.T) {
	e := newEnvWith(t, lab.Config{Nodes: 3, SecondNetwork: true})
	e.startVigil()
	vip := lab.SecondVIPv4(0)
	e.apply(webVIP("storage", vip, preferNode("node-a", 200), func(v *vigilv1.VirtualIP) {
		v.Spec.Preemption = vigilv1.PreemptionNever
	}))
	before, _ := e.waitStatus("storage", 10*time.Second, "node-a Ready on eth1 with 2 standbys", func(s vigilv1.VirtualIPStatus) bool {
		return readyOn("node-a")(s) && s.Interface == lab.SecondInterface && len(s.Standbys) == 2
	})
	e.waitAnswer(vip, "node-a", 5*time.Second)
	rec := e.startRecorder(vip)

	fault := time.Now()
	if err := e.l.SetCarrier("node-a", lab.SecondInterface, false); err != nil {
		t.Fatal(err)
	}
	samples, err := rec.WaitFor(10*time.Second, func(s []lab.Sample) bool { return lab.AnalyzeFault(s, fault, "node-a").Recovered })
	if err != nil {
		t.Fatalf("eth1 of node-a without carrier: %s never answered elsewhere: %v", vip, err)
	}
	o := lab.AnalyzeFault(samples, fault, "node-a")
	answered := o.FirstOKAfter.Sub(fault)
	t.Logf("eth1 carrier of node-a down -> %s answered by %s after %v (client's longest wait %v, %d failed requests)",
		vip, o.NewOwner, answered.Round(time.Millisecond), o.Duration.Round(time.Millisecond), o.Failed)
	if answered > carrierFailoverBudget {
		t.Errorf("%s answered by %s %v after node-a's eth1 lost carrier, want within %v", vip, o.NewOwner, answered.Round(time.Millisecond), carrierFailoverBudget)
	}
	moved, _ := e.waitStatus("storage", 5*time.Second, "owner "+o.NewOwner, func(s vigilv1.VirtualIPStatus) bool { return s.Owner == o.NewOwner })
	if tr := moved.LastTransition; tr == nil || tr.Reason != vigilv1.ReasonOwnerUnhealthy || tr.From != "node-a" {
		t.Errorf("last transition %+v, want OwnerUnhealthy from node-a", tr)
	}
	note := e.waitEvent("VirtualIP", "storage", vigilv1.ReasonOwnerUnhealthy, 5*time.Second, "node-a", "carrier")
	t.Logf("Event OwnerUnhealthy: %s", note)
	if r := e.report("node-a", "storage"); r == nil || r.Eligible || !strings.Contains(r.Reason, "carrier") {
		t.Errorf("node-a's report on storage without carrier: %+v, want not eligible because of the carrier", r)
	}
	// node-a keeps the address quietly for the make-before-break hold, then lets it go.
	e.waitNodesHolding(vip, 10*time.Second, []string{o.NewOwner})
	t.Logf("node-a released %s %v after the fault", vip, time.Since(fault).Round(time.Millisecond))

	e.carrierBack(rec, vip, o.NewOwner, moved.Epoch)
	if before.Epoch+1 != moved.Epoch {
		t.Errorf("epoch %d -> %d for one move", before.Epoch, moved.Epoch)
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

// leads reports whether a leader Lease holder identity names the replica pod: its
// hostname, then "_" and a random suffix.
func leads(holder, pod string) bool { return strings.HasPrefix(holder, pod+"_") }

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

// The controller's leader runs on the node that owns the VIP, and that node dies: no
// controller is alive in memberlist, so the first standby takes the VIP over by itself
// once fence-after has passed; the surviving replica then acquires the Lease and confirms
// the owner.
func TestLeaderDiesWithTheOwner(t *testing.T) {
	e := newEnv(t, 3)
	const leaderPod, survivorPod = "vigil-controller-1", "vigil-controller-2"
	e.startReplica("node-a", leaderPod)
	for _, n := range e.l.Nodes {
		e.startAgent(n.Name)
	}
	if err := e.l.WaitForVigil(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	e.waitLeader(leaderPod, time.Second)
	e.startReplica("node-b", survivorPod)
	if err := e.l.WaitForVigil(30 * time.Second); err != nil { // node-b's replica Ready too
		t.Fatal(err)
	}
	e.waitLeader(leaderPod, 0)
	vip := lab.VIPv4(62)
	e.apply(webVIP("web", vip, preferNode("node-a", 200)))
	before, _ := e.waitStatus("web", 10*time.Second, "node-a Ready with 2 standbys", func(s vigilv1.VirtualIPStatus) bool {
		return readyOn("node-a")(s) && len(s.Standbys) == 2
	})
	e.waitAnswer(vip, "node-a", 5*time.Second)
	time.Sleep(time.Second) // every agent has seen the standbys
	rec := e.startRecorder(vip)

	crash := time.Now()
	if err := e.l.CrashNode("node-a"); err != nil {
		t.Fatal(err)
	}
	samples, err := rec.WaitFor(10*time.Second, func(s []lab.Sample) bool { return lab.AnalyzeFault(s, crash, "node-a").Recovered })
	if err != nil {
		t.Fatalf("crash of node-a with the leader: %s never answered elsewhere: %v", vip, err)
	}
	o := lab.AnalyzeFault(samples, crash, "node-a")
	answered := o.FirstOKAfter.Sub(crash)
	t.Logf("crash of node-a (owner and leader) -> %s answered by %s after %v (standbys were %v)", vip, o.NewOwner, answered.Round(time.Millisecond), before.Standbys)
	if answered > leaderlessFailoverBudget {
		t.Errorf("%s answered by %s %v after the crash, want within %v", vip, o.NewOwner, answered.Round(time.Millisecond), leaderlessFailoverBudget)
	}
	if o.NewOwner != before.Standbys[0] {
		t.Errorf("%s took the VIP over, want the first standby %s", o.NewOwner, before.Standbys[0])
	}
	led := e.waitLeader(survivorPod, newLeaderBudget-time.Since(crash))
	t.Logf("%s on node-b leads %v after the crash", survivorPod, led.Sub(crash).Round(time.Millisecond))
	e.confirmsTakeover(rec, vip, o.NewOwner, o.FirstOKAfter, led)
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

// outageAfterRestore is how long the API server stays stopped once the crashed owner is
// back with its agent started (it waits for the API server meanwhile).
const outageAfterRestore = 3 * time.Second

// An API outage long enough for the controller to lose its Lease (renew deadline 10 s),
// after which the owner's node crashes and the first standby takes its VIP over; the
// crashed node comes back and its agent starts. No controller decision is pending when the
// API server returns, and none comes for a while (a new leader must acquire the Lease),
// so the agents alone must keep the address on one node: within a second of the API
// server's return exactly one node holds it, and it stays so. The returning node is the
// owner in the last published status, and must not bind the address next to the standby
// that took it over.
func TestTakeoverInAPIOutageHasOneHolderOnReturn(t *testing.T) {
	e := newEnv(t, 3)
	e.startVigil()
	vip := lab.VIPv4(63)
	e.apply(webVIP("web", vip, preferNode("node-a", 200)))
	before, _ := e.waitStatus("web", 10*time.Second, "node-a Ready with 2 standbys", func(s vigilv1.VirtualIPStatus) bool {
		return readyOn("node-a")(s) && len(s.Standbys) == 2
	})
	e.waitAnswer(vip, "node-a", 5*time.Second)
	time.Sleep(time.Second) // every agent has seen the standbys
	rec := e.startRecorder(vip)
	api, err := e.l.APIServer()
	if err != nil {
		t.Fatal(err)
	}
	leader, _ := e.l.Process("cp/vigil-controller")
	outage := time.Now()
	if err := api.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = api.Signal(syscall.SIGCONT)
		}
	}()
	if err := leader.Wait(20 * time.Second); err != nil {
		t.Fatalf("the controller kept running in the API outage: %v", err)
	}
	t.Logf("the controller lost its Lease and exited %v into the outage", time.Since(outage).Round(time.Millisecond))
	taker := e.crashInOutage(rec, "node-a")
	if taker != before.Standbys[0] {
		t.Errorf("%s took the VIP over, want the first standby %s", taker, before.Standbys[0])
	}
	sampler, err := e.l.SampleHolders(vip, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer sampler.Stop()
	if err := e.l.RestoreNode("node-a"); err != nil {
		t.Fatal(err)
	}
	e.startAgent("node-a")
	time.Sleep(outageAfterRestore)
	if err := api.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	back := time.Now()
	t.Logf("API server back after %v", back.Sub(outage).Round(time.Millisecond))
	e.oneHolderAfter(sampler, back, taker)
	e.settlesAfterOutage(rec, vip, back)
}

// crashInOutage crashes node, the VIP's owner, while the API server is down, and returns
// the node that answers for it then.
func (e *env) crashInOutage(rec *lab.Recorder, node string) string {
	e.t.Helper()
	crash := time.Now()
	if err := e.l.CrashNode(node); err != nil {
		e.t.Fatal(err)
	}
	samples, err := rec.WaitFor(10*time.Second, func(s []lab.Sample) bool { return lab.AnalyzeFault(s, crash, node).Recovered })
	if err != nil {
		e.t.Fatalf("crash of %s in the API outage: never answered elsewhere: %v", node, err)
	}
	o := lab.AnalyzeFault(samples, crash, node)
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
