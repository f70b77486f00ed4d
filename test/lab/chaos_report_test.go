package lab

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The report counts faults per kind, lays each window at the door of the faults around
// it, lists the violations with those faults, and has the keys docs/bench/chaos.json
// promises.
func TestChaosReport(t *testing.T) {
	held := func(n ...string) []string { return n }
	faults := []FaultRecord{
		fault(FaultAgentKill, "node-a", s(1.5), s(6)),
		fault(FaultNodeCrash, "node-b", s(20), s(25)),
		fault(FaultNodeCrash, "node-c", s(50), s(55)),
	}
	obs := observe(s(70), []phase{
		{0, held("node-a"), nil, true},
		{s(2), held("node-a", "node-b"), nil, true}, // agent killed: bound twice for 4 s
		{s(6), held("node-b"), nil, true},
		{s(20), nil, nil, false}, // node-b crashed: 1 s without a holder
		{s(21), held("node-c"), nil, true},
	}, faults...)
	f := CheckInvariants(obs)
	final := finalViolations(map[string]string{"web4-a": "held by node-c but status.owner is \"node-b\""}, checkT0.Add(s(55)))
	r := BuildChaosReport(ChaosMeta{Seed: 7, Duration: time.Minute, Nodes: 4, Machine: "test", FinalSettle: -1}, obs, f, final)

	if want := map[string]int{"agent-kill": 1, "node-crash": 2}; !reflect.DeepEqual(r.FaultsByKind, want) {
		t.Errorf("faults_by_kind %v, want %v", r.FaultsByKind, want)
	}
	if r.LongestDoubleMS != 4000 || r.LongestGapMS != 1000 {
		t.Errorf("longest double %v ms, gap %v ms; want 4000 and 1000", r.LongestDoubleMS, r.LongestGapMS)
	}
	wantKinds := []KindSummary{{Kind: "node-crash", Count: 2, LongestGapMS: 1000}, {Kind: "agent-kill", Count: 1, LongestDoubleMS: 4000}}
	if !reflect.DeepEqual(r.ByKind, wantKinds) {
		t.Errorf("by kind %+v, want %+v", r.ByKind, wantKinds)
	}
	if r.Violations.Count != 2 || r.Violations.List[0].Kind != ViolationDoubleHolder || r.Violations.List[1].Kind != ViolationFinalState {
		t.Fatalf("violations %+v, want the double holding, then the final state", r.Violations)
	}
	if v := r.Violations.List[0]; v.AtS != 2 || v.DurationMS != 4000 || !reflect.DeepEqual(v.ActiveFaults, []string{"agent-kill node-a (+1.5s)"}) {
		t.Errorf("violation %+v", v)
	}
	if v := r.VIPs[0]; v.Name != "web4-a" || v.Check != "tcp" || v.Moves != 2 || v.Violations != 2 || v.LongestClientOutageMS != 1020 || v.Failed != 50 {
		t.Errorf("VIP summary %+v", v)
	}

	wantOutage := ClientOutageLine{AtS: 19.98, VIP: "web4-a", DurationMS: 1020, Before: "node-b", After: "node-c",
		Errors: map[string]int{"timeout": 50}, ActiveFaults: []string{"node-crash node-b (+20.0s)"}}
	if len(r.ClientOutages) != 1 || !reflect.DeepEqual(r.ClientOutages[0], wantOutage) {
		t.Errorf("client outages %+v, want %+v", r.ClientOutages, wantOutage)
	}

	path := filepath.Join(t.TempDir(), "chaos.json")
	if err := WriteChaosReport(path, r); err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	b, _ := json.Marshal(r)
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"date", "machine", "duration_s", "seed", "faults_by_kind", "violations", "longest_double_ms", "longest_gap_ms", "vips"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("the report has no key %q", k)
		}
	}
	sum := r.Summary()
	for _, want := range []string{"seed 7", "3 faults, 2 violations", "longest double holding 4s", "NOT every VirtualIP Ready", "+2.0s web4-a double-holder 4000.0 ms (bound 3000 ms)",
		"+20.0s web4-a 1.02s, node-b -> node-c, timeout x50"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
}

// A stretch without kernel samples is a stall of the machine, which the report names.
func TestObserverSummaryListsStalls(t *testing.T) {
	obs := observe(s(10), []phase{{0, []string{"node-a"}, nil, true}})
	obs.Kernel = append(obs.Kernel[:30:30], obs.Kernel[55:]...) // nothing from +3.0s to +5.5s
	o := observerSummary(obs)
	if want := []StallLine{{AtS: 2.9, MS: 2600}}; !reflect.DeepEqual(o.Stalls, want) || o.MaxKernelIntervalMS != 2600 {
		t.Errorf("observer %+v, want the stall %+v", o, want)
	}
}
