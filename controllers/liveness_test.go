package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
)

func TestAgentAlive(t *testing.T) {
	now := t0
	timeout := 30 * time.Second
	fresh, stale := now.Add(-5*time.Second), now.Add(-time.Minute)
	cases := []struct {
		name      string
		heartbeat time.Time
		member    *membership.State
		want      bool
	}{
		{"no memberlist, fresh heartbeat", fresh, nil, true},
		{"no memberlist, stale heartbeat", stale, nil, false},
		{"memberlist alive, stale heartbeat (API outage): alive", stale, &membership.State{Alive: true, Since: stale}, true},
		{"memberlist dead after the last heartbeat: dead at once", fresh, &membership.State{Alive: false, Since: now.Add(-time.Second)}, false},
		{"memberlist dead, but a heartbeat since: alive", now.Add(-time.Second), &membership.State{Alive: false, Since: now.Add(-3 * time.Second)}, true},
		{"a heartbeat seen 300 ms after the death notice may have been written before it: dead",
			now.Add(-time.Second), &membership.State{Alive: false, Since: now.Add(-1300 * time.Millisecond)}, false},
		{"memberlist dead long ago, heartbeat since but stale", stale, &membership.State{Alive: false, Since: now.Add(-2 * time.Minute)}, false},
	}
	for _, tc := range cases {
		if got := AgentAlive(tc.heartbeat, tc.member, now, timeout); got != tc.want {
			t.Errorf("%s: alive=%v, want %v", tc.name, got, tc.want)
		}
	}
}

// The controller measures from when it saw a change, on its own clock: an agent whose
// clock runs an hour ahead is not alive for an hour after it stops; one an hour behind is
// not dead while it beats.
func TestObserverMeasuresOnTheControllersClock(t *testing.T) {
	timeout := 30 * time.Second
	agent := func(name string, written time.Time) vigilv1.NodeAgent {
		return vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: vigilv1.NodeAgentStatus{HeartbeatTime: metav1.NewTime(written),
			VIPs: []vigilv1.VIPEligibility{{Name: "web", Eligible: true, Since: metav1.NewMicroTime(written)}}}}
	}
	var o Observer
	ahead, behind := agent("ahead", t0.Add(time.Hour)), agent("behind", t0.Add(-time.Hour))
	seen := o.Heartbeats([]vigilv1.NodeAgent{ahead, behind}, t0)
	// 31 s later the one ahead has not beaten again; the one behind has.
	behind.Status.HeartbeatTime = metav1.NewTime(t0.Add(-time.Hour + 20*time.Second))
	later := t0.Add(31 * time.Second)
	seen2 := o.Heartbeats([]vigilv1.NodeAgent{ahead, behind}, later)
	if AgentAlive(seen2["ahead"], nil, later, timeout) {
		t.Errorf("the agent whose clock runs ahead is alive 31 s after its last beat (seen at %v)", seen["ahead"])
	}
	if !AgentAlive(seen2["behind"], nil, later, timeout) {
		t.Error("the agent whose clock runs behind is dead though it beats")
	}
	// Eligibility: since when the controller saw it, not the agent's 'since'.
	web := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "web-1"}}
	ahead.Status.VIPs[0].UID = web.UID
	since := o.EligibleSince(web, []vigilv1.NodeAgent{ahead}, t0)
	if !since["ahead"].Equal(t0) {
		t.Errorf("eligible since %v, want %v (first seen)", since["ahead"], t0)
	}
	if again := o.EligibleSince(web, []vigilv1.NodeAgent{ahead}, later); !again["ahead"].Equal(t0) {
		t.Errorf("unchanged eligibility restarted at %v", again["ahead"])
	}
	ahead.Status.VIPs[0].Eligible = false
	if flipped := o.EligibleSince(web, []vigilv1.NodeAgent{ahead}, later); !flipped["ahead"].Equal(later) {
		t.Errorf("a flip is dated %v, want %v", flipped["ahead"], later)
	}
	// "web" deleted and created again: the report on the old one is no report on it.
	web2 := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "web-2"}}
	evenLater := later.Add(time.Second)
	if got := o.EligibleSince(web2, []vigilv1.NodeAgent{ahead}, evenLater); len(got) != 0 {
		t.Errorf("a report on the deleted VirtualIP counts for the new one: %v", got)
	}
	ahead.Status.VIPs[0].UID = web2.UID
	if got := o.EligibleSince(web2, []vigilv1.NodeAgent{ahead}, evenLater); !got["ahead"].Equal(evenLater) {
		t.Errorf("the new VirtualIP's first report is dated %v, want %v", got["ahead"], evenLater)
	}
}

// A new leader counts the gossiping agents its memberlist never listed as dead, once its
// join has settled: it learns of deaths from before it joined at once.
func TestNewLeaderCountsUnseenAgentsDead(t *testing.T) {
	joined := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	seen := func() map[string]membership.State { return map[string]membership.State{"a": {Alive: true}} }
	if got := withUnseenDead(seen(), []string{"a", "b"}, joined, joined.Add(500*time.Millisecond)); len(got) != 1 {
		t.Errorf("before the join settled: %v, want only a", got)
	}
	got := withUnseenDead(seen(), []string{"a", "b"}, joined, joined.Add(2*time.Second))
	if m, ok := got["b"]; !ok || m.Alive || !m.Since.Equal(joined.Add(joinSettle)) {
		t.Errorf("after the join settled: b is %+v, want dead since %v", got["b"], joined.Add(joinSettle))
	}
	if !got["a"].Alive {
		t.Errorf("a listed alive became %+v", got["a"])
	}
	if got := withUnseenDead(seen(), []string{"a", "b"}, time.Time{}, joined); len(got) != 1 {
		t.Errorf("never joined anyone: %v, want memberlist's view only", got)
	}
}

// A node's report on a deleted VirtualIP of the same name says nothing of the new one:
// not a verdict, and not a bind at its epoch (which the election would take for a
// takeover).
func TestCandidatesIgnoreReportsOnAnEarlierObject(t *testing.T) {
	web := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "web-2"}, Status: vigilv1.VirtualIPStatus{Owner: "b", Epoch: 1}}
	node := func(name string) corev1.Node { return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	agent := func(name string, uid types.UID, epoch int64) vigilv1.NodeAgent {
		return vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: vigilv1.NodeAgentStatus{
			VIPs: []vigilv1.VIPEligibility{{Name: "web", UID: uid, Eligible: true, BoundEpoch: epoch}}}}
	}
	members := map[string]membership.State{"a": {Alive: true}, "b": {Alive: true}}
	cs := Candidates(web, []vigilv1.NodeAgent{agent("a", "web-1", 1), agent("b", "web-2", 1)}, []corev1.Node{node("a"), node("b")},
		members, Seen{}, t0, time.Minute)
	for _, c := range cs {
		if c.Node == "a" && (c.Reported || c.BoundEpoch != 0) {
			t.Errorf("node a's report on the old web counts: %+v", c)
		}
		if c.Node == "b" && (!c.Reported || c.BoundEpoch != 1) {
			t.Errorf("node b's report on the new web is missing: %+v", c)
		}
	}
	if d := Elect(ElectionInput{VIP: web, Candidates: cs, Now: t0}); d.Owner != "b" || d.Reason == vigilv1.ReasonTakenOver {
		t.Errorf("election: %+v, want b kept (no takeover by a)", d)
	}
}

// An agent leaves out the VirtualIPs it is eligible for and does not hold once they are
// omitSettledAfter old: such a node is an eligible candidate for an old VirtualIP, and not
// yet reported for a new one (the first election waits for its verdict); one that has not
// judged yet is not reported either.
func TestCandidatesCountLeftOutVIPsEligibleOnceSettled(t *testing.T) {
	vip := func(age time.Duration) *vigilv1.VirtualIP {
		return &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "w1", CreationTimestamp: metav1.NewTime(t0.Add(-age))}}
	}
	judged := vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Status: vigilv1.NodeAgentStatus{OmitSettledAfter: &metav1.Duration{Duration: 30 * time.Second}}}
	unjudged := vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: "b"}}
	nodes := []corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, {ObjectMeta: metav1.ObjectMeta{Name: "b"}}}
	members := map[string]membership.State{"a": {Alive: true}, "b": {Alive: true}}
	for _, tc := range []struct {
		age                          time.Duration
		wantAReported, wantAEligible bool
	}{{time.Minute, true, true}, {10 * time.Second, false, false}} {
		cs := Candidates(vip(tc.age), []vigilv1.NodeAgent{judged, unjudged}, nodes, members, Seen{}, t0, time.Minute)
		for _, c := range cs {
			switch {
			case c.Node == "a" && (c.Reported != tc.wantAReported || c.Eligible != tc.wantAEligible || c.BoundEpoch != 0):
				t.Errorf("VirtualIP %v old: node a %+v, want reported %v, eligible %v, not bound", tc.age, c, tc.wantAReported, tc.wantAEligible)
			case c.Node == "b" && c.Reported:
				t.Errorf("VirtualIP %v old: node b has not judged it but counts as reported: %+v", tc.age, c)
			}
		}
	}
}
