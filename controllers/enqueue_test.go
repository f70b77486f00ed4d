package controllers

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
	"vigil.dev/vigil/internal/scheme"
)

// Reports are written as "name:eligible" ("web:1", "db:0"), "name:epoch3" for a report
// of the address bound at epoch 3, "name:pending".
func TestReportChanges(t *testing.T) {
	parse := func(s string) []vigilv1.VIPEligibility {
		var out []vigilv1.VIPEligibility
		for _, f := range strings.Fields(s) {
			name, state, _ := strings.Cut(f, ":")
			r := vigilv1.VIPEligibility{Name: name, Eligible: state != "0"}
			switch state {
			case "pending":
				r.Pending = true
			case "epoch3":
				r.BoundEpoch = 3
			}
			out = append(out, r)
		}
		return out
	}
	judged := &metav1.Duration{Duration: 30 * time.Second}
	cases := []struct {
		name      string
		old, new  string
		oldJudged bool // old has omitSettledAfter
		change    func(s *vigilv1.NodeAgentStatus)
		wantNames string
		wantAll   bool
	}{
		{name: "a heartbeat alone changes no election", old: "web:1 db:1", new: "web:1 db:1",
			change: func(s *vigilv1.NodeAgentStatus) { s.HeartbeatTime = metav1.NewTime(time.Unix(10, 0)) }},
		{name: "a new VIP's first report", old: "web:1", new: "db:1 web:1", wantNames: "db"},
		{name: "a verdict that changes", old: "web:1 db:1", new: "web:0 db:1", wantNames: "web"},
		{name: "a first verdict after pending", old: "web:pending", new: "web:1", wantNames: "web"},
		{name: "the bind reported", old: "web:1 db:1", new: "web:epoch3 db:1", wantNames: "web"},
		{name: "a report gone (VIP deleted or no longer selected)", old: "web:1 db:1", new: "db:1", wantNames: "web"},
		{name: "draining changes every election", old: "web:1", new: "web:1", wantAll: true,
			change: func(s *vigilv1.NodeAgentStatus) { s.Draining = true }},
		{name: "a new memberlist address changes liveness", old: "web:1", new: "web:1", wantAll: true,
			change: func(s *vigilv1.NodeAgentStatus) { s.MemberlistAddress = "198.18.0.2:7947" }},
		{name: "new gateways change the reserved addresses", old: "web:1", new: "web:1", wantAll: true,
			change: func(s *vigilv1.NodeAgentStatus) { s.Gateways = []string{"198.18.0.1"} }},
		{name: "an agent's first judgement makes every VIP it left out eligible", old: "web:1", new: "", wantAll: true,
			change: func(s *vigilv1.NodeAgentStatus) { s.OmitSettledAfter = judged }},
		{name: "an entry left out once settled changes that VIP only", old: "web:1 db:epoch3", new: "db:epoch3", wantNames: "web",
			oldJudged: true, change: func(s *vigilv1.NodeAgentStatus) { s.OmitSettledAfter = judged }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := vigilv1.NodeAgentStatus{VIPs: parse(tc.old)}
			if tc.oldJudged {
				old.OmitSettledAfter = judged
			}
			updated := vigilv1.NodeAgentStatus{VIPs: parse(tc.new)}
			if tc.change != nil {
				tc.change(&updated)
			}
			names, all := ReportChanges(&old, &updated)
			if all != tc.wantAll || !slices.Equal(names, strings.Fields(tc.wantNames)) {
				t.Errorf("ReportChanges = %v, all %v; want %q, all %v", names, all, tc.wantNames, tc.wantAll)
			}
		})
	}
}

func TestOwnerLost(t *testing.T) {
	members := map[string]membership.State{"a": {Alive: true}, "b": {Alive: false}}
	cases := []struct {
		owner string
		want  bool
	}{
		{"a", false}, // alive
		{"b", true},  // dead: re-elect first
		{"c", false}, // unknown to memberlist: left to heartbeats, not urgent
		{"", false},  // no owner
	}
	for _, tc := range cases {
		vip := &vigilv1.VirtualIP{Status: vigilv1.VirtualIPStatus{Owner: tc.owner}}
		if got := OwnerLost(vip, members); got != tc.want {
			t.Errorf("owner %q: OwnerLost = %v, want %v", tc.owner, got, tc.want)
		}
	}
}

func TestNodeElectionChanged(t *testing.T) {
	base := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"zone": "x"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.18.0.2"}}}}
	cases := []struct {
		name   string
		change func(n *corev1.Node)
		want   bool
	}{
		{"the kubelet's status heartbeat", func(n *corev1.Node) {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, LastHeartbeatTime: metav1.Now()}}
		}, false},
		{"a label (nodeSelector)", func(n *corev1.Node) { n.Labels["zone"] = "y" }, true},
		{"cordoned", func(n *corev1.Node) { n.Spec.Unschedulable = true }, true},
		{"a new address (reserved addresses)", func(n *corev1.Node) { n.Status.Addresses[0].Address = "198.18.0.3" }, true},
		{"being deleted", func(n *corev1.Node) { n.DeletionTimestamp = new(metav1.Now()) }, true},
	}
	for _, tc := range cases {
		updated := base.DeepCopy()
		tc.change(updated)
		if got := NodeElectionChanged(&base, updated); got != tc.want {
			t.Errorf("%s: NodeElectionChanged = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A death wakes every VirtualIP: the dead owner's are handed out first, ahead of work
// already waiting, and the others (a standby list to rewrite) only after
// standbyRewriteDelay.
func TestEnqueueAllPutsTheDeadOwnersVIPsFirst(t *testing.T) {
	vip := func(name, owner string) vigilv1.VirtualIP {
		return vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: vigilv1.VirtualIPStatus{Owner: owner}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithLists(&vigilv1.VirtualIPList{Items: []vigilv1.VirtualIP{
		vip("a1", "a"), vip("b1", "b"), vip("a2", "a"), vip("b2", "b"), vip("none", ""),
	}}).Build()
	members := map[string]membership.State{"a": {Alive: true}, "b": {Alive: false}}
	r := &VirtualIPReconciler{Client: c, Members: func() map[string]membership.State { return members }}
	q := priorityqueue.New[reconcile.Request]("test")
	defer q.ShutDown()
	q.Add(reconcile.Request{NamespacedName: client.ObjectKey{Name: "waiting-before"}})

	r.enqueueAll(context.Background(), q)
	var first []string
	for range 3 {
		req, _ := q.Get()
		first = append(first, req.Name)
		q.Done(req)
	}
	if !slices.Equal(first[:2], []string{"b1", "b2"}) || first[2] != "waiting-before" {
		t.Errorf("handed out first %v; want b1, b2 (owner dead), then what waited before", first)
	}
	if n := q.Len(); n != 0 {
		t.Errorf("%d VIPs ready at once besides the dead owner's; want them after %v", n, standbyRewriteDelay)
	}
	deadline := time.Now().Add(standbyRewriteDelay + 2*time.Second)
	var rest []string
	for len(rest) < 3 && time.Now().Before(deadline) {
		if q.Len() == 0 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		req, _ := q.Get()
		rest = append(rest, req.Name)
		q.Done(req)
	}
	slices.Sort(rest)
	if !slices.Equal(rest, []string{"a1", "a2", "none"}) {
		t.Errorf("after the delay: %v; want a1, a2, none", rest)
	}

	// With every owner alive (a node coming back), nothing waits.
	members["b"] = membership.State{Alive: true}
	r.enqueueAll(context.Background(), q)
	if n := q.Len(); n != 5 {
		t.Errorf("%d VIPs ready when no owner is dead; want all 5 at once", n)
	}
}
