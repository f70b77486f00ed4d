package agent

import (
	"net/netip"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"vigil.dev/vigil/agent/dataplane"
	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
)

func TestToVIPCarriesAddressPrefixInterfaceAndAnnouncePolicy(t *testing.T) {
	v := func(name, addr, owner string, prefix *int32) vigilv1.VirtualIP {
		return vigilv1.VirtualIP{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: vigilv1.VirtualIPSpec{Address: addr, PrefixLength: prefix, Interface: "eth0", Announce: vigilv1.Announce{
				Count: 3, Interval: metav1.Duration{Duration: 100 * time.Millisecond}, RefreshInterval: metav1.Duration{Duration: time.Minute},
			}},
			Status: vigilv1.VirtualIPStatus{Owner: owner},
		}
	}
	p24 := int32(24)
	var got []dataplane.VIP
	for _, vip := range []vigilv1.VirtualIP{
		v("a", "198.18.0.100", "node-a", nil),
		v("b", "198.18.0.101", "node-a", &p24),
		v("v6", "fd00::100", "node-a", nil),
	} {
		dv, ok := ToVIP(&vip)
		if !ok {
			t.Fatalf("%s not converted", vip.Name)
		}
		got = append(got, dv)
	}
	want := []struct {
		name string
		addr string
		bits int
	}{{"a", "198.18.0.100", 32}, {"b", "198.18.0.101", 24}, {"v6", "fd00::100", 128}}
	if len(got) != len(want) {
		t.Fatalf("got %d VIPs, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.Address != netip.MustParseAddr(w.addr) || g.PrefixLen != w.bits || g.Interface != "eth0" ||
			g.Announce.Count != 3 || g.Announce.Interval != 100*time.Millisecond || g.Announce.Refresh != time.Minute {
			t.Errorf("VIP %d = %+v, want %s %s/%d on eth0 with the announce policy", i, g, w.name, w.addr, w.bits)
		}
	}
}

func TestOldOwnerAddrForwardsOnlyToALiveOldOwnerThatReportsItsInterface(t *testing.T) {
	moved := func(from, to, reason string) *vigilv1.VirtualIP {
		v := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Status: vigilv1.VirtualIPStatus{Owner: to, Epoch: 4}}
		if from != "" || reason != "" {
			v.Status.LastTransition = &vigilv1.OwnerTransition{From: from, To: to, Reason: reason}
		}
		return v
	}
	agent := func(node, vip, mac string) vigilv1.NodeAgent {
		a := vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: node}}
		a.Status.VIPs = []vigilv1.VIPEligibility{{Name: vip, Interface: "eth0", HardwareAddress: mac}}
		return a
	}
	const bMAC = "02:00:00:00:00:0b"
	agents := []vigilv1.NodeAgent{agent("node-a", "web", "02:00:00:00:00:0a"), agent("node-b", "web", bMAC)}
	alive := map[string]membership.State{"node-a": {Alive: true}, "node-b": {Alive: true}}
	dead := map[string]membership.State{"node-a": {Alive: true}, "node-b": {Alive: false}}
	cases := []struct {
		name   string
		v      *vigilv1.VirtualIP
		agents []vigilv1.NodeAgent
		states map[string]membership.State
		want   string
	}{
		{"planned move from a live node", moved("node-b", "node-a", vigilv1.ReasonOwnerDraining), agents, alive, bMAC},
		{"preemption", moved("node-b", "node-a", vigilv1.ReasonPreempted), agents, alive, bMAC},
		{"old owner unhealthy but alive", moved("node-b", "node-a", vigilv1.ReasonOwnerUnhealthy), agents, alive, bMAC},
		{"without memberlist the report decides", moved("node-b", "node-a", vigilv1.ReasonOwnerDraining), agents, nil, bMAC},
		{"old owner lost: nothing to keep", moved("node-b", "node-a", vigilv1.ReasonOwnerLost), agents, alive, ""},
		{"memberlist says the old owner is dead", moved("node-b", "node-a", vigilv1.ReasonOwnerDraining), agents, dead, ""},
		{"first election: no old owner", moved("", "node-a", vigilv1.ReasonElected), agents, alive, ""},
		{"no transition recorded", moved("", "node-a", ""), agents, alive, ""},
		{"the transition is to another node", moved("node-b", "node-c", vigilv1.ReasonOwnerDraining), agents, alive, ""},
		{"old owner reports no address", moved("node-b", "node-a", vigilv1.ReasonOwnerDraining),
			[]vigilv1.NodeAgent{agent("node-b", "web", "")}, alive, ""},
		{"old owner reports another VIP only", moved("node-b", "node-a", vigilv1.ReasonOwnerDraining),
			[]vigilv1.NodeAgent{agent("node-b", "api", bMAC)}, alive, ""},
		{"old owner has no NodeAgent", moved("node-b", "node-a", vigilv1.ReasonOwnerDraining), nil, alive, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mac, ok := oldOwnerAddr(tc.v, "node-a", tc.agents, tc.states)
			if got := mac.String(); !ok && got != "" || ok != (tc.want != "") || got != tc.want {
				t.Errorf("oldOwnerAddr = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

// A node unsure of its view reads the VirtualIPs no longer than until its wait for them
// ends (then it asks the link), and a short read after that; otherwise the whole timeout.
func TestFreshReadBudget(t *testing.T) {
	now := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	cases := []struct {
		scenario    string
		unsureSince time.Time
		want        time.Duration
	}{
		{"not unsure: the whole timeout", time.Time{}, freshReadTimeout},
		{"just back: until the wait ends", now, unsureWait},
		{"back 1.5 s ago: the half second left", now.Add(-1500 * time.Millisecond), 500 * time.Millisecond},
		{"the wait is over: a short read before the link is asked", now.Add(-5 * time.Second), minFreshRead},
	}
	for _, tc := range cases {
		if got := freshReadBudget(tc.unsureSince, now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.scenario, got, tc.want)
		}
	}
}
