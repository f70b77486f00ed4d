package e2e

import (
	"strings"
	"testing"
	"time"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/test/lab"
)

// Bounds of these tests (chart defaults: fence-after 1 s, leader Lease 15 s, memberlist
// probes every 100 ms).
const (
	// carrierFailoverBudget and eligibleAgainBudget: a lost carrier is seen at once (the
	// agent watches its links), reported, and the controller moves the VIP as for a failed
	// check; the carrier's return is seen as its loss is, at once, and the NodeAgent report
	// follows within a few hundred ms.
	carrierFailoverBudget, eligibleAgainBudget = 1500 * time.Millisecond, 2 * time.Second
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
	o := e.failedOver(rec, fault, "node-a", 10*time.Second, "eth1 of node-a without carrier: "+vip.String())
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
	before, rec := e.serveFromNodeA(vip)

	crash := time.Now()
	if err := e.l.CrashNode("node-a"); err != nil {
		t.Fatal(err)
	}
	o := e.failedOver(rec, crash, "node-a", 10*time.Second, "crash of node-a with the leader: "+vip.String())
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
	e := newVigilEnv(t, 3)
	vip := lab.VIPv4(63)
	before, rec := e.serveFromNodeA(vip)
	leader, _ := e.l.Process("cp/vigil-controller")
	outage, resume := e.stopAPIServer()
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
	resume()
	back := time.Now()
	t.Logf("API server back after %v", back.Sub(outage).Round(time.Millisecond))
	e.oneHolderAfter(sampler, back, taker)
	e.settlesAfterOutage(rec, vip, back)
}
