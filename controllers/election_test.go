package controllers

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// node builds a candidate from a compact description: "a" eligible, "a!" alive but not
// eligible, "a-" dead, "a~" draining, "a?" alive without a first verdict.
func node(desc string) Candidate {
	c := Candidate{Node: strings.TrimRight(desc, "!-~?"), Alive: true, Reported: true, Eligible: true, Since: t0.Add(-time.Hour)}
	switch {
	case strings.HasSuffix(desc, "!"):
		c.Eligible, c.Reason = false, "tcp 127.0.0.1:80: connection refused (3 in a row)"
	case strings.HasSuffix(desc, "-"):
		c.Alive = false
	case strings.HasSuffix(desc, "~"):
		c.Draining = true
	case strings.HasSuffix(desc, "?"):
		c.Reported, c.Eligible = false, false
	}
	c.Labels = map[string]string{"kubernetes.io/hostname": c.Node, "zone": map[bool]string{true: "edge", false: "core"}[c.Node == "a" || c.Node == "b"]}
	return c
}

func nodes(descs ...string) []Candidate {
	var out []Candidate
	for _, d := range descs {
		out = append(out, node(d))
	}
	return out
}

// manyNodes are n eligible candidates n00, n01, ... and how many VIPs each holds (nXX holds
// XX), so that their takeover order is their name order.
func manyNodes(n int) ([]Candidate, map[string]int) {
	var out []Candidate
	owned := map[string]int{}
	for i := range n {
		c := node(fmt.Sprintf("n%02d", i))
		out = append(out, c)
		owned[c.Node] = i
	}
	return out, owned
}

func vipWith(owner string, mutate ...func(*vigilv1.VirtualIP)) *vigilv1.VirtualIP {
	v := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: vigilv1.VirtualIPSpec{Address: "198.18.0.100", Preemption: vigilv1.PreemptionNever}}
	v.Status.Owner = owner
	for _, m := range mutate {
		m(v)
	}
	return v
}

func prefer(node string, prio int32) func(*vigilv1.VirtualIP) {
	return func(v *vigilv1.VirtualIP) {
		v.Spec.Priorities = append(v.Spec.Priorities, vigilv1.PriorityRule{
			NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/hostname": node}}, Priority: prio})
	}
}

func atEpoch(e int64) func(*vigilv1.VirtualIP) {
	return func(v *vigilv1.VirtualIP) { v.Status.Epoch = e }
}

func preemptAfter(d time.Duration) func(*vigilv1.VirtualIP) {
	return func(v *vigilv1.VirtualIP) {
		v.Spec.Preemption = vigilv1.PreemptionAlways
		v.Spec.PreemptionDelay = &metav1.Duration{Duration: d}
	}
}

func TestElect(t *testing.T) {
	many, manyOwned := manyNodes(vigilv1.MaxStandbys + 4)
	var manyBest []string // n01..n16: every other eligible node, best first, up to the cap
	for _, c := range many[1 : vigilv1.MaxStandbys+1] {
		manyBest = append(manyBest, c.Node)
	}
	cases := []struct {
		name       string
		vip        *vigilv1.VirtualIP
		candidates []Candidate
		owned      map[string]int
		mutate     func([]Candidate)

		owner    string
		reason   string
		degraded bool
		standbys []string
		requeue  time.Duration
	}{
		{name: "no owner: the node holding fewest VIPs wins", vip: vipWith(""), candidates: nodes("a", "b", "c"),
			owned: map[string]int{"a": 2, "b": 0, "c": 1}, owner: "b", reason: vigilv1.ReasonElected, standbys: []string{"c", "a"}},
		{name: "priority beats load", vip: vipWith("", prefer("c", 200)), candidates: nodes("a", "b", "c"),
			owned: map[string]int{"c": 5, "b": 1}, owner: "c", reason: vigilv1.ReasonElected, standbys: []string{"a", "b"}},
		{name: "highest matching rule counts", vip: vipWith("", prefer("a", 150), func(v *vigilv1.VirtualIP) {
			v.Spec.Priorities = append(v.Spec.Priorities, vigilv1.PriorityRule{NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"zone": "core"}}, Priority: 180})
		}), candidates: nodes("a", "b", "c"), owner: "c", reason: vigilv1.ReasonElected, standbys: []string{"a", "b"}},
		{name: "sticky: a healthy owner keeps it without preemption", vip: vipWith("a", prefer("b", 200)), candidates: nodes("a", "b"),
			owner: "a", standbys: []string{"b"}},
		{name: "preemption waits for the delay and asks to look again", vip: vipWith("a", prefer("b", 200), preemptAfter(30*time.Second)),
			candidates: nodes("a", "b"), mutate: func(c []Candidate) { c[1].Since = t0.Add(-10 * time.Second) },
			owner: "a", standbys: []string{"b"}, requeue: 20 * time.Second},
		{name: "preemption after the delay", vip: vipWith("a", prefer("b", 200), preemptAfter(30*time.Second)),
			candidates: nodes("a", "b"), mutate: func(c []Candidate) { c[1].Since = t0.Add(-31 * time.Second) },
			owner: "b", reason: vigilv1.ReasonPreempted, standbys: []string{"a"}},
		{name: "no preemption by an equal node", vip: vipWith("a", preemptAfter(0)), candidates: nodes("a", "b"),
			owned: map[string]int{"a": 9}, owner: "a", standbys: []string{"b"}},
		{name: "owner dead: best standby takes over", vip: vipWith("a", prefer("c", 120)), candidates: nodes("a-", "b", "c"),
			owner: "c", reason: vigilv1.ReasonOwnerLost, standbys: []string{"b"}},
		{name: "owner unhealthy", vip: vipWith("a"), candidates: nodes("a!", "b"), owner: "b", reason: vigilv1.ReasonOwnerUnhealthy},
		{name: "owner draining", vip: vipWith("a"), candidates: nodes("a~", "b"), owner: "b", reason: vigilv1.ReasonOwnerDraining},
		{name: "owner no longer selected", vip: vipWith("a", func(v *vigilv1.VirtualIP) {
			v.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"zone": "core"}}
		}), candidates: nodes("a", "b", "c"), owner: "c", reason: vigilv1.ReasonNotSelected},
		{name: "nodeSelector limits candidates", vip: vipWith("", func(v *vigilv1.VirtualIP) {
			v.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"zone": "edge"}}
		}), candidates: nodes("a!", "b!", "c"), owned: map[string]int{"b": 1}, owner: "a", reason: vigilv1.ReasonElected, degraded: true},
		{name: "fail open: nobody eligible, the live owner keeps it", vip: vipWith("a"), candidates: nodes("a!", "b!", "c!"),
			owner: "a", degraded: true},
		{name: "fail open without owner: best live node, degraded", vip: vipWith("", prefer("b", 200)), candidates: nodes("a!", "b!"),
			owner: "b", reason: vigilv1.ReasonElected, degraded: true},
		{name: "fail open after the owner died", vip: vipWith("a"), candidates: nodes("a-", "b!", "c-"),
			owner: "b", reason: vigilv1.ReasonOwnerLost, degraded: true},
		{name: "draining owner hands over even when nobody is eligible", vip: vipWith("a"), candidates: nodes("a~", "b!"),
			owner: "b", reason: vigilv1.ReasonOwnerDraining, degraded: true},
		{name: "draining owner with no live peer keeps it", vip: vipWith("a"), candidates: nodes("a~", "b-"),
			owner: "a", degraded: true},
		{name: "no verdicts yet: nobody is elected, not even fail open", vip: vipWith(""), candidates: nodes("a?", "b?"), owner: ""},
		{name: "a new VIP waits for the other first verdicts", vip: vipWith("", func(v *vigilv1.VirtualIP) { v.CreationTimestamp = metav1.NewTime(t0.Add(-500 * time.Millisecond)) }),
			candidates: nodes("a?", "b"), owner: "", requeue: 1500 * time.Millisecond},
		{name: "then the first verdicts elect", vip: vipWith(""), candidates: nodes("a?", "b"), owner: "b", reason: vigilv1.ReasonElected},
		{name: "an owner without a verdict (agent restarting) keeps the VIP", vip: vipWith("a"), candidates: nodes("a?", "b"), owner: "a", standbys: []string{"b"}},
		{name: "every agent dead: no owner", vip: vipWith("a"), candidates: nodes("a-", "b-"), owner: "", reason: vigilv1.ReasonNoCandidate},
		{name: "no agents at all", vip: vipWith(""), owner: "", reason: vigilv1.ReasonNoCandidate},
		{name: "a standby took the VIP over while no controller could decide: it becomes the owner, though the old one came back",
			vip: vipWith("a", atEpoch(4)), candidates: nodes("a", "b", "c"), mutate: func(cs []Candidate) { cs[1].BoundEpoch = 4 },
			owner: "b", reason: vigilv1.ReasonTakenOver, standbys: []string{"c", "a"}},
		{name: "an old epoch reported bound (a make-before-break hold) is no takeover",
			vip: vipWith("a", atEpoch(4)), candidates: nodes("a", "b"), mutate: func(cs []Candidate) { cs[1].BoundEpoch = 3 },
			owner: "a", standbys: []string{"b"}},
		{name: "standbys in takeover order, ineligible ones left out", vip: vipWith("a", prefer("c", 150)), candidates: nodes("a", "b", "c", "d!"),
			owned: map[string]int{"b": 0}, owner: "a", standbys: []string{"c", "b"}},
		{name: "standbys: only the best MaxStandbys, in takeover order", vip: vipWith("n00"), candidates: many, owned: manyOwned,
			owner: "n00", standbys: manyBest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mutate != nil {
				tc.mutate(tc.candidates)
			}
			d := Elect(ElectionInput{VIP: tc.vip, Candidates: tc.candidates, Owned: tc.owned, Now: t0})
			if d.Owner != tc.owner || d.Reason != tc.reason || d.Degraded != tc.degraded || d.RequeueAfter != tc.requeue {
				t.Errorf("got owner=%q reason=%q degraded=%v requeue=%v (%s)\nwant owner=%q reason=%q degraded=%v requeue=%v",
					d.Owner, d.Reason, d.Degraded, d.RequeueAfter, d.Message, tc.owner, tc.reason, tc.degraded, tc.requeue)
			}
			if tc.standbys != nil && !slices.Equal(d.Standbys, tc.standbys) {
				t.Errorf("standbys %v, want %v", d.Standbys, tc.standbys)
			}
		})
	}
}

// Ties between equal nodes are broken by a stable hash of (VIP, node): the same input
// gives the same owner whatever the order of candidates, and VIPs spread over nodes.
func TestElectTiesAreStableAndSpread(t *testing.T) {
	winners := map[string]int{}
	for i := range 30 {
		vip := vipWith("")
		vip.Name = "vip-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		cands := nodes("a", "b", "c")
		first := Elect(ElectionInput{VIP: vip, Candidates: cands, Now: t0}).Owner
		for range 5 {
			rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
			if got := Elect(ElectionInput{VIP: vip, Candidates: cands, Now: t0}).Owner; got != first {
				t.Fatalf("%s: owner %s with one candidate order, %s with another", vip.Name, first, got)
			}
		}
		winners[first]++
	}
	if len(winners) != 3 {
		t.Errorf("30 VIPs on 3 equal idle nodes all went to %v", winners)
	}
}
