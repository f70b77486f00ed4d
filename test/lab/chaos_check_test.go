package lab

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

var (
	checkT0  = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	checkVIP = ChaosVIP{Name: "web4-a", Address: VIPv4(0), Checked: true}
)

// phase is a stretch of a synthetic run from its offset on: the nodes holding checkVIP
// (kernel), those of them with their link down, and whether the client is answered.
type phase struct {
	from     time.Duration
	holders  []string
	linkDown []string
	answered bool
}

// observe builds the observations of a run of length total: a kernel sample every 100 ms
// and a client request every 20 ms, each as the phase in force says; faults as given,
// at offsets.
func observe(total time.Duration, phases []phase, faults ...FaultRecord) Observations {
	obs := Observations{Start: checkT0, End: checkT0.Add(total), VIPs: []ChaosVIP{checkVIP}, Faults: faults, Client: map[string][]Sample{}}
	at := func(d time.Duration) phase {
		cur := phases[0]
		for _, p := range phases {
			if p.from <= d {
				cur = p
			}
		}
		return cur
	}
	for d := time.Duration(0); d <= total; d += KernelSampleInterval {
		p := at(d)
		s := KernelSample{At: checkT0.Add(d)}
		for _, n := range testNodes {
			na := NodeAddrs{Node: n}
			if slices.Contains(p.holders, n) && !slices.Contains(p.linkDown, n) {
				na.VIPs = append(na.VIPs, checkVIP.Address)
			}
			s.Nodes = append(s.Nodes, na)
		}
		obs.Kernel = append(obs.Kernel, s)
	}
	for d := time.Duration(0); d <= total; d += 20 * time.Millisecond {
		p := at(d)
		s := Sample{Start: checkT0.Add(d), End: checkT0.Add(d + time.Millisecond), OK: p.answered, Err: "timeout"}
		if p.answered && len(p.holders) > 0 {
			s.Node, s.Err = p.holders[len(p.holders)-1], ""
		}
		obs.Client[checkVIP.Name] = append(obs.Client[checkVIP.Name], s)
	}
	return obs
}

func fault(kind FaultKind, target string, from, to time.Duration) FaultRecord {
	f := FaultRecord{PlannedFault: PlannedFault{Kind: kind, At: from, For: to - from}, Applied: checkT0.Add(from), Undone: checkT0.Add(to)}
	if faultSpecs[kind].onVIP {
		f.VIP = target
	} else {
		f.Node = target
	}
	return f
}

func s(n float64) time.Duration { return time.Duration(n * float64(time.Second)) }

func violationsOf(f Findings, kind string) []Violation {
	var out []Violation
	for _, v := range f.Violations {
		if v.Kind == kind {
			out = append(out, v)
		}
	}
	return out
}

// expectLongest checks that the longest of the windows (0 when there are none) lasts want;
// what names them in the failure message.
func expectLongest(t *testing.T, what string, windows []Window, want time.Duration) {
	t.Helper()
	var longest time.Duration
	for _, w := range windows {
		longest = max(longest, w.Duration())
	}
	if longest != want {
		t.Errorf("longest %s %v, want %v (%+v)", what, longest, want, windows)
	}
}

// Invariant 1: two holders for longer than MaxDoubleHolding is a violation; a planned
// move's drain is not; a holder the client cannot reach (isolated, link down) does not
// count.
func TestCheckDoubleHolding(t *testing.T) {
	cases := []struct {
		name    string
		phases  []phase
		faults  []FaultRecord
		longest time.Duration // of the double windows (0: none)
		violate bool
	}{
		{"a planned move drains for 1.5 s", []phase{{0, []string{"node-a"}, nil, true}, {s(2), []string{"node-a", "node-b"}, nil, true}, {s(3.5), []string{"node-b"}, nil, true}},
			[]FaultRecord{fault(FaultServiceStop, "node-a", s(1), s(6))}, s(1.5), false},
		{"an agent killed with its address bound: held twice for 4 s", []phase{{0, []string{"node-a"}, nil, true}, {s(2), []string{"node-a", "node-b"}, nil, true}, {s(6), []string{"node-b"}, nil, true}},
			[]FaultRecord{fault(FaultAgentKill, "node-a", s(1.5), s(6))}, s(4), true},
		{"an isolated owner the client cannot reach does not count", []phase{{0, []string{"node-a"}, nil, true}, {s(2), []string{"node-a", "node-b"}, nil, true}, {s(7), []string{"node-b"}, nil, true}},
			[]FaultRecord{fault(FaultIsolateNode, "node-a", s(1.5), s(8))}, 0, false},
		{"an owner cut from its peers but not the client counts", []phase{{0, []string{"node-a"}, nil, true}, {s(2), []string{"node-a", "node-b"}, nil, true}, {s(7), []string{"node-b"}, nil, true}},
			[]FaultRecord{fault(FaultSplitFromPeers, "node-a", s(1.5), s(8))}, s(5), true},
		{"an address on a downed link does not count", []phase{{0, []string{"node-a"}, nil, true}, {s(2), []string{"node-a", "node-b"}, []string{"node-a"}, true}, {s(7), []string{"node-b"}, nil, true}},
			[]FaultRecord{fault(FaultNodeCrash, "node-a", s(2), s(8))}, 0, false},
		{"two planned moves in a row drain 2 s each", []phase{{0, []string{"node-a"}, nil, true}, {s(2), []string{"node-a", "node-b"}, nil, true},
			{s(4), []string{"node-b", "node-c"}, nil, true}, {s(6), []string{"node-c"}, nil, true}}, nil, s(2), false},
		{"three holders for 4 s", []phase{{0, []string{"node-a"}, nil, true}, {s(2), []string{"node-a", "node-b", "node-c"}, nil, true}, {s(6), []string{"node-c"}, nil, true}},
			nil, s(4), true},
		{"still held twice at the end", []phase{{0, []string{"node-a"}, nil, true}, {s(5), []string{"node-a", "node-c"}, nil, true}},
			nil, s(5), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := CheckInvariants(observe(s(10), c.phases, c.faults...))
			expectLongest(t, "double", f.Doubles, c.longest)
			got := violationsOf(f, ViolationDoubleHolder)
			if (len(got) > 0) != c.violate {
				t.Fatalf("violations %+v, want violated=%v", got, c.violate)
			}
			if c.violate && (got[0].Bound != MaxDoubleHolding || !reflect.DeepEqual(got[0].Faults, c.faults)) {
				t.Errorf("violation %+v: want bound %v and the faults around it %v", got[0], MaxDoubleHolding, c.faults)
			}
		})
	}
}

// Invariant 2: no holder and no answer for longer than the budget is a violation; the
// budget is longer while nobody can publish a decision, and there is none while the
// VirtualIP does not exist.
func TestCheckNoHolder(t *testing.T) {
	held := func(n string) []string { return []string{n} }
	gapPhases := func(from, to time.Duration) []phase {
		return []phase{{0, held("node-a"), nil, true}, {from, nil, nil, false}, {to, held("node-b"), nil, true}}
	}
	cases := []struct {
		name    string
		phases  []phase
		faults  []FaultRecord
		longest time.Duration
		bound   time.Duration // of the violation; 0: none
	}{
		{"a crash fails over in 1 s", gapPhases(s(2), s(3)), []FaultRecord{fault(FaultNodeCrash, "node-a", s(2), s(8))}, s(1), 0},
		{"4 s without a holder", gapPhases(s(2), s(6)), []FaultRecord{fault(FaultNodeCrash, "node-a", s(2), s(8))}, s(4), FailoverBudget},
		{"6 s while the API server is stopped", gapPhases(s(2), s(8)), []FaultRecord{fault(FaultAPIStop, "", s(1), s(9))}, s(6), 0},
		{"12 s while the API server is stopped", gapPhases(s(2), s(14)), []FaultRecord{fault(FaultAPIStop, "", s(1), s(15))}, s(12), APIOutageBudget},
		{"8 s soon after the API server is back", gapPhases(s(6), s(14)), []FaultRecord{fault(FaultAPIStop, "", s(0.5), s(2))}, s(8), 0},
		{"15 s after the controller was killed", gapPhases(s(2), s(17)), []FaultRecord{fault(FaultControllerKill, "", s(1), s(2))}, s(15), 0},
		{"a controller killed long before gives no allowance", gapPhases(s(25), s(29)), []FaultRecord{fault(FaultControllerKill, "", s(1), s(2))}, s(4), FailoverBudget},
		{"an API outage 2 s into a gap lengthens its budget", gapPhases(s(2), s(9)), []FaultRecord{fault(FaultAPIStop, "", s(4), s(12))}, s(7), 0},
		{"an API outage 4 s into a gap does not", gapPhases(s(2), s(9)), []FaultRecord{fault(FaultAPIStop, "", s(6), s(12))}, s(7), FailoverBudget},
		{"a held address whose service is down is no gap", []phase{{0, held("node-a"), nil, true}, {s(2), held("node-a"), nil, false}},
			[]FaultRecord{fault(FaultServiceStop, "node-a", s(2), s(20))}, 0, 0},
		{"a client answer ends a gap", []phase{{0, held("node-a"), nil, true}, {s(2), nil, nil, false}, {s(3), nil, nil, true}, {s(8), held("node-b"), nil, true}},
			nil, s(1), 0},
		{"deleted for 5 s, bound 4 s after re-creation", []phase{{0, held("node-a"), nil, true}, {s(2), nil, nil, false}, {s(11), held("node-b"), nil, true}},
			[]FaultRecord{fault(FaultVIPRecreate, checkVIP.Name, s(2), s(7))}, s(4), 0},
		{"deleted, 6 s to bind after re-creation", []phase{{0, held("node-a"), nil, true}, {s(2), nil, nil, false}, {s(13), held("node-b"), nil, true}},
			[]FaultRecord{fault(FaultVIPRecreate, checkVIP.Name, s(2), s(7))}, s(6), NewVIPBudget},
		{"a crash before the controller leads again after an outage: 15 s", gapPhases(s(7), s(22)), []FaultRecord{fault(FaultAPIStop, "", s(0.5), s(2))}, s(15), 0},
		{"re-created just before an outage, bound after it: 12 s", []phase{{0, held("node-a"), nil, true}, {s(2), nil, nil, false}, {s(16), held("node-b"), nil, true}},
			[]FaultRecord{fault(FaultVIPRecreate, checkVIP.Name, s(2), s(4)), fault(FaultAPIStop, "", s(6), s(14))}, s(12), 0},
		{"another VIP's re-creation gives this one no allowance", gapPhases(s(2), s(6)), []FaultRecord{fault(FaultVIPRecreate, "plain4-c", s(1), s(3))}, s(4), FailoverBudget},
		{"no holder up to the end", []phase{{0, held("node-a"), nil, true}, {s(34), nil, nil, false}}, nil, s(6), FailoverBudget},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := CheckInvariants(observe(s(40), c.phases, c.faults...))
			expectLongest(t, "gap", f.Gaps, c.longest)
			got := violationsOf(f, ViolationNoHolder)
			switch {
			case c.bound == 0 && len(got) > 0:
				t.Errorf("violations %+v, want none", got)
			case c.bound != 0 && (len(got) != 1 || got[0].Bound != c.bound):
				t.Errorf("violations %+v, want one against bound %v", got, c.bound)
			}
		})
	}
}

// A sample in which no node could be read tells nothing: it neither starts nor ends a
// window.
func TestCheckIgnoresUnreadableSamples(t *testing.T) {
	obs := observe(s(10), []phase{{0, []string{"node-a"}, nil, true}})
	for i := range obs.Kernel[20:60] {
		for j := range obs.Kernel[20+i].Nodes {
			obs.Kernel[20+i].Nodes[j] = NodeAddrs{Node: obs.Kernel[20+i].Nodes[j].Node, Err: "netlink: interrupted"}
		}
	}
	obs.Client = nil
	if f := CheckInvariants(obs); len(f.Gaps) != 0 || len(f.Violations) != 0 {
		t.Errorf("unreadable samples made %+v", f)
	}
}

// Invariant 3: after the last fault each VirtualIP exists, one node holds it, and its
// status names that node, Ready.
func TestFinalProblems(t *testing.T) {
	ok := FinalVIPState{Name: "a", Exists: true, Owner: "node-a", Ready: true, Holders: []string{"node-a"}, Answer: "node-a"}
	mutate := func(f func(*FinalVIPState)) FinalVIPState { s := ok; f(&s); return s }
	cases := []struct {
		name  string
		state FinalVIPState
		bad   bool
	}{
		{"Ready on its one holder", ok, false},
		{"deleted and never re-created", mutate(func(s *FinalVIPState) { s.Exists = false }), true},
		{"the API server does not answer", mutate(func(s *FinalVIPState) { s.Err = "context deadline exceeded" }), true},
		{"held by two nodes", mutate(func(s *FinalVIPState) { s.Holders = []string{"node-a", "node-b"} }), true},
		{"held by none", mutate(func(s *FinalVIPState) { s.Holders = nil }), true},
		{"status names another node", mutate(func(s *FinalVIPState) { s.Owner = "node-b" }), true},
		{"not Ready", mutate(func(s *FinalVIPState) { s.Ready = false }), true},
		{"the client gets no answer", mutate(func(s *FinalVIPState) { s.Answer, s.AnswerErr = "", "timeout" }), true},
		{"the client is answered by another node", mutate(func(s *FinalVIPState) { s.Answer = "node-b" }), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			problems := FinalProblems([]FinalVIPState{c.state})
			if _, bad := problems["a"]; bad != c.bad {
				t.Errorf("problems %v, want a problem: %v", problems, c.bad)
			}
		})
	}
}
