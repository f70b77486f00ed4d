package agent

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"vigil.dev/vigil/agent/address"
	"vigil.dev/vigil/agent/probe"
	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

var (
	macA = net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
)

// vipOf builds VirtualIP "web" owned by owner at epoch (UID "web-1"), standbys after.
func vipOf(owner string, epoch int64, standbys ...string) vigilv1.VirtualIP {
	return vigilv1.VirtualIP{
		ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "web-1"},
		Spec: vigilv1.VirtualIPSpec{Address: "198.18.0.100", HealthChecks: []vigilv1.HealthCheck{
			{Name: "http", TCP: &vigilv1.TCPCheck{Port: 80}}}},
		Status: vigilv1.VirtualIPStatus{Owner: owner, Epoch: epoch, Standbys: standbys},
	}
}

func movedFrom(from, reason string) func(*vigilv1.VirtualIP) {
	return func(v *vigilv1.VirtualIP) {
		v.Status.LastTransition = &vigilv1.OwnerTransition{From: from, To: v.Status.Owner, Reason: reason}
	}
}

func agentReport(node string, boundEpoch int64, mac net.HardwareAddr) vigilv1.NodeAgent {
	return vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: node}, Status: vigilv1.NodeAgentStatus{
		MemberlistAddress: node + ":7952",
		VIPs:              []vigilv1.VIPEligibility{{Name: "web", Eligible: true, BoundEpoch: boundEpoch, HardwareAddress: mac.String()}},
	}}
}

// members describes memberlist's view: "b" alive, "b-2s" dead for 2 s; the controller is
// alive unless "ctl-" is given.
func members(descs ...string) map[string]membership.State {
	m := map[string]membership.State{"a": {Alive: true}, controllerMemberPrefix + "cp": {Alive: true}}
	for _, d := range descs {
		if d == "ctl-" {
			m[controllerMemberPrefix+"cp"] = membership.State{Alive: false, Since: t0.Add(-time.Minute)}
			continue
		}
		name, ago, dead := strings.Cut(d, "-")
		if !dead {
			m[name] = membership.State{Alive: true}
			continue
		}
		d, _ := time.ParseDuration(ago)
		m[name] = membership.State{Alive: false, Since: t0.Add(-d)}
	}
	return m
}

// observation is node a's view: eth0 up with carrier in 198.18.0.0/24, every peer alive,
// the API server answering, the checks passing.
func observation(vips ...vigilv1.VirtualIP) Observation {
	return Observation{
		Node: "a", Now: t0, NodeLabels: map[string]string{"kubernetes.io/hostname": "a"},
		VIPs: vips, Members: members("b", "c"), Majority: true, MajorityFor: time.Minute,
		Links: []address.Link{{Name: "eth0", Index: 2, Up: true, Carrier: true, HardwareAddr: macA,
			Addresses: []address.Address{{Prefix: netip.MustParsePrefix("198.18.0.11/24")}}}},
		Health:     map[string]probe.Health{"web": {Eligible: true, Reason: "all health checks passing"}},
		Forwarding: true, FenceAfter: time.Second, Drain: 2 * time.Second,
	}
}

func mem(mutate func(*Memory)) Memory {
	m := Memory{}.clone()
	mutate(&m)
	return m
}

func TestDecide(t *testing.T) {
	uid := types.UID("web-1")
	cases := []struct {
		name    string
		in      Observation
		hold    string // "web", "web(quiet)" or ""
		check   func(t *testing.T, d Decision)
		readAPI bool
	}{
		{name: "the owner holds and announces", in: observation(vipOf("a", 1)), hold: "web"},
		{name: "another node's VIP is not held", in: observation(vipOf("b", 1)), hold: ""},
		{name: "an older epoch than one seen (a stale cache) is ignored", hold: "",
			in: with(observation(vipOf("a", 4)), func(o *Observation) { o.Memory = mem(func(m *Memory) { m.Fences[uid] = 5 }) })},
		{name: "a VirtualIP re-created under its name is a new object: held at epoch 1, the old one forgotten", hold: "web",
			in: with(observation(withUID(vipOf("a", 1), "web-2")), func(o *Observation) {
				o.Memory = mem(func(m *Memory) { m.Fences[uid], m.Bound[uid] = 7, 7 })
			}),
			check: func(t *testing.T, d Decision) {
				if _, ok := d.Memory.Fences[uid]; ok || d.Memory.Fences["web-2"] != 1 {
					t.Errorf("fences %v: want only web-2 at 1", d.Memory.Fences)
				}
			}},
		{name: "moved away: held quietly until the new owner reports the bind", hold: "web(quiet)",
			in: with(observation(vipOf("b", 4)), func(o *Observation) {
				o.Agents = []vigilv1.NodeAgent{agentReport("b", 0, macB)}
				o.Memory = mem(func(m *Memory) { m.Fences[uid], m.Bound[uid] = 3, 3 })
			}),
			check: func(t *testing.T, d Decision) {
				if h := d.Memory.Holds[uid]; h.Confirmed || !h.Until.Equal(t0.Add(holdTimeout)) || d.Again != holdRecheck {
					t.Errorf("hold %+v, again %v: want unconfirmed until +%v, recheck in %v", h, d.Again, holdTimeout, holdRecheck)
				}
			}},
		{name: "moved away because this node was found dead (it was only cut off): released at once", hold: "",
			in: with(observation(with2(vipOf("b", 4), movedFrom("a", vigilv1.ReasonOwnerLost))), func(o *Observation) {
				o.Memory = mem(func(m *Memory) { m.Fences[uid], m.Bound[uid] = 3, 3 })
			})},
		{name: "a standby's takeover confirmed by the controller: the old owner releases at once", hold: "",
			in: with(observation(with2(vipOf("b", 5), movedFrom("a", vigilv1.ReasonTakenOver))), func(o *Observation) {
				o.Memory = mem(func(m *Memory) { m.Fences[uid], m.Bound[uid] = 4, 4 })
			})},
		{name: "the new owner reports the bind: quiet for the drain", hold: "web(quiet)",
			in: with(observation(vipOf("b", 4)), func(o *Observation) {
				o.Agents = []vigilv1.NodeAgent{agentReport("b", 4, macB)}
				o.Memory = mem(func(m *Memory) { m.Bound[uid], m.Holds[uid] = 3, Hold{Until: t0.Add(time.Second)} })
			}),
			check: func(t *testing.T, d Decision) {
				if h := d.Memory.Holds[uid]; !h.Confirmed || !h.Until.Equal(t0.Add(2*time.Second)) {
					t.Errorf("hold %+v: want confirmed, until the drain's end", h)
				}
			}},
		{name: "a report on a deleted VirtualIP of the same name (another UID) confirms nothing", hold: "web(quiet)",
			in: with(observation(vipOf("b", 4)), func(o *Observation) {
				old := agentReport("b", 4, macB)
				old.Status.VIPs[0].UID = "web-0"
				o.Agents = []vigilv1.NodeAgent{old}
				o.Memory = mem(func(m *Memory) { m.Bound[uid], m.Holds[uid] = 3, Hold{Until: t0.Add(time.Second)} })
			}),
			check: func(t *testing.T, d Decision) {
				if h := d.Memory.Holds[uid]; h.Confirmed {
					t.Errorf("hold %+v: confirmed by a report on another object", h)
				}
			}},
		{name: "the drain is over: released", hold: "",
			in: with(observation(vipOf("b", 4)), func(o *Observation) {
				o.Memory = mem(func(m *Memory) { m.Bound[uid], m.Holds[uid] = 3, Hold{Until: t0, Confirmed: true} })
			})},
		{name: "no confirmation within the hold timeout: released", hold: "",
			in: with(observation(vipOf("b", 4)), func(o *Observation) {
				o.Memory = mem(func(m *Memory) { m.Bound[uid], m.Holds[uid] = 3, Hold{Until: t0.Add(-time.Millisecond)} })
			})},
		{name: "a planned move to this node forwards the old owner's connections for the drain", hold: "web",
			in: with(observation(with2(vipOf("a", 2), movedFrom("b", vigilv1.ReasonOwnerDraining))), func(o *Observation) {
				o.Agents = []vigilv1.NodeAgent{agentReport("b", 0, macB)}
			}),
			check: func(t *testing.T, d Decision) {
				if len(d.Forward) != 1 || d.Forward[0].To.String() != macB.String() || d.Forward[0].Interface != "eth0" || d.Again != 2*time.Second {
					t.Errorf("forward %v, again %v: want one rule to %s on eth0 for 2s", d.Forward, d.Again, macB)
				}
			}},
		{name: "a move after OwnerLost forwards nothing", hold: "web",
			in: with(observation(with2(vipOf("a", 2), movedFrom("b", vigilv1.ReasonOwnerLost))), func(o *Observation) {
				o.Agents = []vigilv1.NodeAgent{agentReport("b", 0, macB)}
			}),
			check: noForward},
		{name: "an old owner memberlist says is dead gets nothing forwarded", hold: "web",
			in: with(observation(with2(vipOf("a", 2), movedFrom("b", vigilv1.ReasonPreempted))), func(o *Observation) {
				o.Agents, o.Members = []vigilv1.NodeAgent{agentReport("b", 0, macB)}, members("b-1s", "c")
			}),
			check: noForward},
		{name: "forwarding ends with the drain", hold: "web",
			in: with(observation(vipOf("a", 2)), func(o *Observation) {
				o.Memory = mem(func(m *Memory) { m.Bound[uid], m.Forwards[uid] = 2, Forward{Until: t0} })
			}),
			check: noForward},
		{name: "API down: the first live standby takes a dead owner's VIP after fence-after, and reports it bound", hold: "web",
			in: with(observation(vipOf("b", 4, "a", "c")), func(o *Observation) {
				o.APIDown, o.Members = 3*time.Second, members("b-1s", "c")
			}),
			check: func(t *testing.T, d Decision) {
				if !slices.Equal(d.TakeOver, []string{"web"}) || d.Memory.TakenOver[uid] != 4 || d.Report[0].BoundEpoch != 4 {
					t.Errorf("takeover %v, remembered %v, report %+v: want web taken at epoch 4 and reported bound", d.TakeOver, d.Memory.TakenOver, d.Report)
				}
			}},
		{name: "API down: not before the owner would have fenced itself", hold: "",
			in: with(observation(vipOf("b", 4, "a", "c")), func(o *Observation) {
				o.APIDown, o.Members = 3*time.Second, members("b-300ms", "c")
			}),
			check: func(t *testing.T, d Decision) {
				if d.Again != 700*time.Millisecond {
					t.Errorf("again %v, want 700ms (when fence-after has passed)", d.Again)
				}
			}},
		{name: "API down: not by the second standby while the first lives", hold: "",
			in: with(observation(vipOf("b", 4, "c", "a")), func(o *Observation) { o.APIDown, o.Members = 3*time.Second, members("b-2s", "c") })},
		{name: "API down: not without a majority", hold: "",
			in: with(observation(vipOf("b", 4, "a")), func(o *Observation) {
				o.APIDown, o.Members, o.Majority = 3*time.Second, members("b-2s", "c-2s"), false
			})},
		{name: "back from a partition, its majority regained a moment ago: no takeover yet (its view of the owner may be stale)", hold: "",
			in: with(observation(vipOf("b", 4, "a", "c")), func(o *Observation) {
				o.APIDown, o.Members, o.MajorityFor = 3*time.Second, members("b-2s", "c"), 100*time.Millisecond
			})},
		{name: "the API server has just answered a fresh read: no takeover on a stale outage", hold: "",
			in: with(observation(vipOf("b", 4, "a", "c")), func(o *Observation) {
				o.APIDown, o.Members, o.Fresh = 3*time.Second, members("b-2s", "c"), true
			})},
		{name: "the controller died with the owner: the standby takes over though the API answers", hold: "web",
			in: with(observation(vipOf("b", 4, "a", "c")), func(o *Observation) { o.Members = members("b-2s", "c", "ctl-") })},
		{name: "a live controller decides a dead owner's VIPs itself", hold: "",
			in: with(observation(vipOf("b", 4, "a", "c")), func(o *Observation) { o.Members = members("b-2s", "c") })},
		{name: "taken over: kept after the API server returns, until a newer epoch", hold: "web",
			in: with(observation(vipOf("b", 4, "a")), func(o *Observation) {
				o.Memory = mem(func(m *Memory) { m.Fences[uid], m.TakenOver[uid], m.Bound[uid] = 4, 4, 4 })
			})},
		{name: "the old owner, back after a takeover, does not answer beside the live standby that took it", hold: "",
			in: with(observation(vipOf("a", 4)), func(o *Observation) { o.Agents = []vigilv1.NodeAgent{agentReport("b", 4, macB)} })},
		{name: "…unless that standby is dead by now", hold: "web",
			in: with(observation(vipOf("a", 4)), func(o *Observation) {
				o.Agents, o.Members = []vigilv1.NodeAgent{agentReport("b", 4, macB)}, members("b-1s", "c")
			})},
		{name: "the standby that took it over announces again when the old owner bound it too", hold: "web",
			in: with(observation(vipOf("b", 4, "a")), func(o *Observation) {
				o.Agents = []vigilv1.NodeAgent{agentReport("b", 4, macB)}
				o.Memory = mem(func(m *Memory) { m.Fences[uid], m.TakenOver[uid], m.Bound[uid] = 4, 4, 4 })
			}),
			check: func(t *testing.T, d Decision) {
				if c := d.Hold[0].Claim; !strings.Contains(c, "contested by b") {
					t.Errorf("claim %q: want it to change (contested by b), so that the address is announced again", c)
				}
			}},
		{name: "taken over, then the controller published another owner: released", hold: "web(quiet)",
			in: with(observation(vipOf("c", 5)), func(o *Observation) {
				o.Agents = []vigilv1.NodeAgent{agentReport("c", 0, macB)}
				o.Memory = mem(func(m *Memory) { m.Fences[uid], m.TakenOver[uid], m.Bound[uid] = 4, 4, 4 })
			}),
			check: func(t *testing.T, d Decision) {
				if _, ok := d.Memory.TakenOver[uid]; ok {
					t.Errorf("takeover still remembered: %v", d.Memory.TakenOver)
				}
			}},
		{name: "isolated: holds nothing and remembers its cache may be stale", hold: "",
			in: with(observation(vipOf("a", 4)), func(o *Observation) {
				o.Isolated = true
				o.Memory = mem(func(m *Memory) { m.Bound[uid], m.Holds["x"] = 4, Hold{Until: t0.Add(time.Second)} })
			}),
			check: func(t *testing.T, d Decision) {
				if !d.Memory.Stale || len(d.Memory.Holds) != 0 {
					t.Errorf("memory %+v: want stale, no holds", d.Memory)
				}
			}},
		{name: "back from isolation: reads the API server before binding anything", hold: "", readAPI: true,
			in: with(observation(vipOf("a", 4)), func(o *Observation) { o.Memory = mem(func(m *Memory) { m.Stale = true }) })},
		{name: "back from isolation with a fresh read: binds what it owns", hold: "web",
			in: with(observation(vipOf("a", 4)), func(o *Observation) {
				o.Fresh = true
				o.Memory = mem(func(m *Memory) { m.Stale = true })
			}),
			check: func(t *testing.T, d Decision) {
				if d.Memory.Stale {
					t.Error("still stale after a fresh read")
				}
			}},
		{name: "the owner's link goes down: the loss remembered (the bind itself fails: no carrier)", hold: "web",
			in: with(observation(vipOf("a", 3)), func(o *Observation) { o.Links[0].Carrier = false }),
			check: func(t *testing.T, d Decision) {
				if !d.Memory.LinkDown || !d.Memory.UnsureSince.IsZero() {
					t.Errorf("memory %+v: want LinkDown, not unsure yet", d.Memory)
				}
			}},
		{name: "its link back: reads the API server before binding again (the VIP may have moved meanwhile)", hold: "", readAPI: true,
			in: with(observation(vipOf("a", 3)), func(o *Observation) { o.Memory = mem(func(m *Memory) { m.LinkDown = true }) }),
			check: func(t *testing.T, d Decision) {
				if d.Memory.LinkDown || !d.Memory.UnsureSince.Equal(t0) || d.Again != unsureRecheck || len(d.AskLink) != 0 {
					t.Errorf("memory %+v, again %v, ask %v: want unsure since now, recheck in %v, no question yet", d.Memory, d.Again, d.AskLink, unsureRecheck)
				}
			}},
		{name: "unsure, the fresh read says it moved: not bound, nothing announced", hold: "",
			in: with(observation(with2(vipOf("b", 4), movedFrom("a", vigilv1.ReasonOwnerLost))), func(o *Observation) {
				o.Fresh = true
				o.Memory = mem(func(m *Memory) { m.Fences[uid], m.UnsureSince = 3, t0.Add(-300*time.Millisecond) })
			}),
			check: func(t *testing.T, d Decision) {
				if !d.Memory.UnsureSince.IsZero() {
					t.Error("still unsure after a fresh read")
				}
			}},
		{name: "unsure, the fresh read says it still owns it: bound", hold: "web",
			in: with(observation(vipOf("a", 3)), func(o *Observation) {
				o.Fresh = true
				o.Memory = mem(func(m *Memory) { m.UnsureSince = t0.Add(-300 * time.Millisecond) })
			})},
		{name: "unsure, the API server unreadable for unsureWait: asks the link who has the address", hold: "", readAPI: true,
			in: with(observation(vipOf("a", 3)), func(o *Observation) {
				o.APIDown = 5 * time.Second
				o.Memory = mem(func(m *Memory) { m.UnsureSince = t0.Add(-unsureWait) })
			}),
			check: func(t *testing.T, d Decision) {
				if len(d.AskLink) != 1 || d.AskLink[0].Address.String() != "198.18.0.100" || d.AskLink[0].Interface != "eth0" {
					t.Errorf("ask %+v: want who has 198.18.0.100 on eth0", d.AskLink)
				}
			}},
		{name: "unsure, nobody answers for the address: binds from its cache (nobody publishes a move while the API server is down)", hold: "web", readAPI: true,
			in: with(observation(vipOf("a", 3)), func(o *Observation) {
				o.APIDown = 5 * time.Second
				o.AddressFree = map[netip.Addr]bool{netip.MustParseAddr("198.18.0.100"): true}
				o.Memory = mem(func(m *Memory) { m.UnsureSince = t0.Add(-unsureWait) })
			})},
		{name: "unsure, another node answers for the address (a standby took it over): not bound", hold: "", readAPI: true,
			in: with(observation(vipOf("a", 3)), func(o *Observation) {
				o.APIDown = 5 * time.Second
				o.AddressFree = map[netip.Addr]bool{netip.MustParseAddr("198.18.0.100"): false}
				o.Memory = mem(func(m *Memory) { m.UnsureSince = t0.Add(-unsureWait) })
			})},
		{name: "back from isolation, the API server still down: unsure from now on", hold: "", readAPI: true,
			in: with(observation(vipOf("a", 3)), func(o *Observation) {
				o.APIDown = 5 * time.Second
				o.Memory = mem(func(m *Memory) { m.Stale = true })
			}),
			check: func(t *testing.T, d Decision) {
				if !d.Memory.UnsureSince.Equal(t0) || !d.Memory.Stale {
					t.Errorf("memory %+v: want stale, unsure since now", d.Memory)
				}
			}},
		{name: "unsure, a VIP already bound since is kept without asking again", hold: "web", readAPI: true,
			in: with(observation(vipOf("a", 3)), func(o *Observation) {
				o.APIDown = 5 * time.Second
				o.Memory = mem(func(m *Memory) { m.UnsureSince, m.Bound[uid] = t0.Add(-5*time.Second), 3 })
			}),
			check: func(t *testing.T, d Decision) {
				if len(d.AskLink) != 0 {
					t.Errorf("asked %v about a VIP it holds", d.AskLink)
				}
			}},
		{name: "a bind that failed makes the node ineligible, with the error", hold: "web",
			in: with(observation(vipOf("a", 4)), func(o *Observation) {
				o.BindErrors = map[types.UID]string{uid: "address already configured by someone else"}
			}),
			check: func(t *testing.T, d Decision) {
				if r := d.Report[0]; r.Eligible || !strings.Contains(r.Reason, "address already configured") {
					t.Errorf("report %+v: want ineligible with the bind error", r)
				}
			}},
		{name: "an interface without carrier makes the node ineligible", hold: "web",
			in: with(observation(vipOf("a", 4)), func(o *Observation) { o.Links[0].Carrier = false }),
			check: func(t *testing.T, d Decision) {
				if r := d.Report[0]; r.Eligible || !strings.Contains(r.Reason, "no carrier") {
					t.Errorf("report %+v: want ineligible: no carrier", r)
				}
			}},
		{name: "failing checks: ineligible with their reason; the checks keep running", hold: "",
			in: with(observation(vipOf("b", 4)), func(o *Observation) {
				o.Health["web"] = probe.Health{Reason: "tcp 127.0.0.1:80: connection refused (3 in a row)", Check: "http"}
			}),
			check: func(t *testing.T, d Decision) {
				if r := d.Report[0]; r.Eligible || !strings.Contains(r.Reason, "refused") || len(d.Checks["web"].Checks) != 1 {
					t.Errorf("report %+v, checks %v", r, d.Checks)
				}
			}},
		{name: "checks not set up yet: pending, no verdict yet", hold: "",
			in: with(observation(vipOf("b", 4)), func(o *Observation) { delete(o.Health, "web") }),
			check: func(t *testing.T, d Decision) {
				if r := d.Report[0]; r.Eligible || !r.Pending || r.Reason != vigilv1.NoVerdictYet {
					t.Errorf("report %+v: want pending, %q", r, vigilv1.NoVerdictYet)
				}
			}},
		{name: "no checks: eligible at once, with no reason to give", hold: "",
			in: with(observation(with2(vipOf("b", 4), func(v *vigilv1.VirtualIP) { v.Spec.HealthChecks = nil })), func(o *Observation) {
				delete(o.Health, "web")
			}),
			check: func(t *testing.T, d Decision) {
				if r := d.Report[0]; !r.Eligible || r.Pending || r.Reason != "" {
					t.Errorf("report %+v: want eligible, not pending, no reason", r)
				}
			}},
		{name: "a node the nodeSelector leaves out runs no checks and reports nothing", hold: "",
			in: observation(with2(vipOf("b", 4), func(v *vigilv1.VirtualIP) {
				v.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"zone": "edge"}}
			})),
			check: func(t *testing.T, d Decision) {
				if len(d.Report) != 0 || len(d.Checks) != 0 {
					t.Errorf("report %v, checks %v: want none", d.Report, d.Checks)
				}
			}},
		{name: "a deleted VirtualIP is forgotten", hold: "",
			in: with(observation(), func(o *Observation) {
				o.Memory = mem(func(m *Memory) { m.Fences[uid], m.Bound[uid], m.TakenOver[uid] = 3, 3, 3 })
			}),
			check: func(t *testing.T, d Decision) {
				if len(d.Memory.Fences)+len(d.Memory.Bound)+len(d.Memory.TakenOver) != 0 {
					t.Errorf("memory %+v: want nothing left", d.Memory)
				}
			}},
		{name: "a reason longer than the schema allows is cut", hold: "web",
			in: with(observation(vipOf("a", 4)), func(o *Observation) {
				o.BindErrors = map[types.UID]string{uid: strings.Repeat("x", 5000)}
			}),
			check: func(t *testing.T, d Decision) {
				if n := len(d.Report[0].Reason); n > vigilv1.MaxReasonLength {
					t.Errorf("reason of %d characters, max %d", n, vigilv1.MaxReasonLength)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.in)
			if got := holdString(d); got != tc.hold {
				t.Errorf("holds %q, want %q", got, tc.hold)
			}
			if d.ReadAPI != tc.readAPI {
				t.Errorf("readAPI %v, want %v", d.ReadAPI, tc.readAPI)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
			if again := Decide(tc.in); holdString(again) != holdString(d) || again.Again != d.Again {
				t.Error("not deterministic: the same input decided twice differs")
			}
		})
	}
}

func holdString(d Decision) string {
	var out []string
	for _, h := range d.Hold {
		if h.Quiet {
			out = append(out, h.Name+"(quiet)")
		} else {
			out = append(out, h.Name)
		}
	}
	return strings.Join(out, ",")
}

func noForward(t *testing.T, d Decision) {
	t.Helper()
	if len(d.Forward) != 0 {
		t.Errorf("forward %v, want none", d.Forward)
	}
}

func with(o Observation, mutate func(*Observation)) Observation {
	o.Health = map[string]probe.Health{"web": o.Health["web"]}
	o.Links = slices.Clone(o.Links)
	mutate(&o)
	return o
}

func with2(v vigilv1.VirtualIP, mutate func(*vigilv1.VirtualIP)) vigilv1.VirtualIP {
	mutate(&v)
	return v
}

func withUID(v vigilv1.VirtualIP, uid types.UID) vigilv1.VirtualIP {
	v.UID = uid
	return v
}

// The decision never holds an address twice, never holds without a bound address to hold
// quietly, and never holds anything while isolated — whatever the input.
func TestDecideInvariants(t *testing.T) {
	for _, tc := range []Observation{
		with(observation(vipOf("a", 1)), func(o *Observation) { o.Isolated = true }),
		with(observation(vipOf("b", 2)), func(o *Observation) {
			o.Memory = mem(func(m *Memory) { m.Holds["web-1"] = Hold{Until: t0.Add(time.Hour)} })
		}),
	} {
		checkInvariants(t, tc, Decide(tc))
	}
}

func checkInvariants(t *testing.T, in Observation, d Decision) {
	t.Helper()
	seen := map[string]bool{}
	for _, h := range d.Hold {
		if seen[h.Address.String()] {
			t.Errorf("%s held twice", h.Address)
		}
		seen[h.Address.String()] = true
		v := findVIP(in.VIPs, h.Name)
		if h.Quiet && (v == nil || in.Memory.Bound[v.UID] == 0) {
			t.Errorf("%s held quietly though it was not bound here", h.Name)
		}
	}
	if in.Isolated && len(d.Hold) > 0 {
		t.Errorf("isolated, yet holding %v", d.Hold)
	}
}
