package e2e

import (
	"net/netip"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/test/lab"
)

// kube-apiserver is stopped (SIGSTOP) for 60 s: clients see no error, and a node crash in
// the middle of the outage still fails over (see docs/concepts.md, "API outage").
func TestAPIOutage(t *testing.T) {
	v4 := lab.VIPv4(60)
	e, owner, rec, outage, resume := servingThroughAnAPIOutage(t, v4, 3*time.Minute)

	// 30 s of outage: the owner keeps serving, nothing fails.
	time.Sleep(30 * time.Second)
	samples, err := rec.Samples()
	if err != nil {
		t.Fatal(err)
	}
	if o := lab.AnalyzeFault(samples, outage, ""); o.Failed != 0 || o.Moves != 0 {
		t.Errorf("during the API outage: %d failed requests (%s), %d moves; want none", o.Failed, o.Failures(outage), o.Moves)
	}

	// The owner's node crashes while the API server is still down: its first live standby
	// takes over once the owner would have fenced itself.
	crash := time.Now()
	if err := e.l.CrashNode(owner); err != nil {
		t.Fatal(err)
	}
	o := e.failedOver(rec, crash, owner, 20*time.Second, "no failover during the API outage")
	t.Logf("crash of %s during the API outage -> %s after %v", owner, o.NewOwner, o.Duration.Round(time.Millisecond))

	// The API server returns after 60 s: the controller agrees, nothing else moves. The
	// controller lost its Lease in the outage and exited; restarted under its pod's name it
	// leads again at once (not a lease duration later), so the status follows within the
	// chaos run's final settle (lab.FinalSettle).
	time.Sleep(time.Until(outage.Add(60 * time.Second)))
	resume()
	back := time.Now()
	deadline := time.Now().Add(lab.FinalSettle)
	for {
		if s := e.get("web").Status; s.Owner == o.NewOwner && meta.FindStatusCondition(s.Conditions, "Ready").Status == "True" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after the outage the status has not settled on %s: %+v", lab.FinalSettle, o.NewOwner, e.get("web").Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the status names %s, Ready, %v after the API server returned", o.NewOwner, time.Since(back).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	samples, err = rec.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if after := lab.AnalyzeFault(samples, back, o.NewOwner); after.Failed != 0 || after.Moves != 0 {
		t.Errorf("after the API server returned: %d failed requests (%s), %d moves; want none", after.Failed, after.Failures(back), after.Moves)
	}
	// The takeover's Event, recorded during the outage, reaches the API once it is back.
	e.waitEvent("VirtualIP", "web", "TakenOver", 30*time.Second)
}

// During an API outage, the owner is cut off for longer than fence-after: it fences itself
// (releases its VIPs), and on its return it cannot read the VirtualIPs from the API server
// to learn whether they moved. Nobody publishes moves while the API server is down; the
// only other possible holder is a standby that took a VIP over, and its kernel answers for
// the address. So the returning owner asks the link and binds what nobody holds: the VIP
// answers again within a few seconds, not when the API server returns. Cut off by a
// partition (every link) and by its own link going down, each shorter and longer than a
// takeover needs.
func TestOwnerBackFromIsolationDuringAnAPIOutageServesAgain(t *testing.T) {
	v4 := lab.VIPv4(61)
	e, _, rec, _, resume := servingThroughAnAPIOutage(t, v4, 4*time.Minute)
	defer resume()
	time.Sleep(3 * time.Second) // the agents find the API server gone (2 s for takeovers)
	for _, c := range []struct {
		how string
		cut time.Duration
	}{{"partition", 1300 * time.Millisecond}, {"link down", 1300 * time.Millisecond}, {"partition", 4 * time.Second}, {"link down", 4 * time.Second}} {
		holder := e.owner(v4, 5*time.Second)
		var others []string
		for _, n := range e.l.Nodes {
			if n.Name != holder {
				others = append(others, n.Name)
			}
		}
		start := time.Now()
		var err error
		if c.how == "partition" {
			if err = e.l.Partition([]string{holder}, append([]string{"cp", "client"}, others...)); err == nil {
				time.Sleep(c.cut)
				err = e.l.Heal()
			}
		} else {
			err = e.l.FlapLink(holder, c.cut)
		}
		if err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		answered, by := e.answeredAfter(rec, back, "", backFromIsolationBudget)
		t.Logf("%s of %s, %v, API server down: answered by %s %v after the cut ended (%v after it began)",
			c.how, holder, c.cut, by, answered.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		time.Sleep(2 * time.Second)
		if h := e.nodesWith(v4); len(h) != 1 {
			t.Errorf("%s of %s, %v: %v hold %s, want one node", c.how, holder, c.cut, h, v4)
		}
	}
}

// A VIP only its owner may hold (nodeSelector): while the API server is down, no standby
// can take it over when the owner is cut off, so nobody answers for it on the owner's
// return and the owner binds it again itself, before the API server returns.
func TestOwnerBackFromIsolationDuringAnAPIOutageBindsWhatNobodyHolds(t *testing.T) {
	e := newVigilEnv(t, 3)
	v4, v6 := lab.VIPv4(62), lab.VIPv6(62)
	onlyNodeA := func(v *vigilv1.VirtualIP) {
		v.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/hostname": "node-a"}}
	}
	e.apply(webVIP("solo4", v4, onlyNodeA))
	e.apply(webVIP("solo6", v6, onlyNodeA))
	e.waitAnswer(v4, "node-a", 10*time.Second)
	e.waitAnswer(v6, "node-a", 10*time.Second)
	recs := []*lab.Recorder{e.record(v4, 2*time.Minute), e.record(v6, 2*time.Minute)}
	_, resume := e.stopAPIServer()
	defer resume()
	time.Sleep(3 * time.Second)
	for _, how := range []string{"partition", "link down"} {
		var err error
		if how == "partition" {
			if err = e.l.Partition([]string{"node-a"}, []string{"cp", "client", "node-b", "node-c"}); err == nil {
				time.Sleep(2 * time.Second)
				err = e.l.Heal()
			}
		} else {
			err = e.l.FlapLink("node-a", 2*time.Second)
		}
		if err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		for i, rec := range recs {
			answered, by := e.answeredAfter(rec, back, "node-a", backFromIsolationBudget)
			t.Logf("%s of node-a for 2s, API server down: %s answered by %s %v after node-a was back", how, []netip.Addr{v4, v6}[i], by, answered.Round(time.Millisecond))
		}
	}
}

// servingThroughAnAPIOutage serves a web VirtualIP at v4 on 3 nodes, records the client's
// requests for d once steady, and stops the API server: it returns the lab, the owner, the
// recorder, when the outage began and how to end it.
func servingThroughAnAPIOutage(t *testing.T, v4 netip.Addr, d time.Duration) (*env, string, *lab.Recorder, time.Time, func()) {
	t.Helper()
	e, owner := newWebEnv(t, 3, v4)
	time.Sleep(2 * time.Second) // standbys reported, statuses settled
	rec := e.record(v4, d)
	e.waitSteady(rec, 50)
	outage, resume := e.stopAPIServer()
	return e, owner, rec, outage, resume
}

// backFromIsolationBudget: a node back from isolation first finds its peers again (its
// fence lifts once memberlist has them back: 1–2 s after a heal), then waits unsureWait
// (2 s) for the API server, asks the link (300 ms), binds and announces — measured 4.4 to
// 4.8 s after the heal; the rest is room for a busy machine. Before, the VIP stayed down
// until the API server returned.
const backFromIsolationBudget = 10 * time.Second
