package lab

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

var (
	testNodes = []string{"node-a", "node-b", "node-c", "node-d"}
	testVIPs  = []string{"web4-a", "web4-b", "plain4-c", "plain4-d", "web6-a", "plain6-b"}
)

func schedule(t *testing.T, seed uint64, d time.Duration, kinds ...FaultKind) []PlannedFault {
	t.Helper()
	plan, err := Schedule(ScheduleOptions{Seed: seed, Duration: d, Nodes: testNodes, VIPs: testVIPs, Kinds: kinds})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func TestScheduleIsReproducibleFromItsSeed(t *testing.T) {
	a, b := schedule(t, 42, 10*time.Minute), schedule(t, 42, 10*time.Minute)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("seed 42 gave two schedules:\n%v\n%v", a, b)
	}
	if c := schedule(t, 43, 10*time.Minute); reflect.DeepEqual(a, c) {
		t.Fatal("seeds 42 and 43 gave the same schedule")
	}
	if len(a) < 20 {
		t.Errorf("a 10-minute schedule has %d faults, want at least 20", len(a))
	}
}

func overlap(a, b PlannedFault) bool { return a.At < b.End() && b.At < a.End() }

// Every fault is bounded and undone in time, at most two are active, and active ones never
// collide, for many seeds.
func TestScheduleKeepsFaultsBoundedAndApart(t *testing.T) {
	const d = 10 * time.Minute
	for seed := range uint64(200) {
		plan := schedule(t, seed, d)
		if max := int(d/spacingMin) + 1; len(plan) > max {
			t.Fatalf("seed %d: %d faults, more than %d", seed, len(plan), max)
		}
		for i, f := range plan {
			spec := faultSpecs[f.Kind]
			if f.At < 0 || f.End() > d || f.For < spec.minFor || f.For > spec.maxFor {
				t.Fatalf("seed %d: %v at %v for %v: outside the phase or the kind's bounds %v..%v", seed, f, f.At, f.For, spec.minFor, spec.maxFor)
			}
			if (spec.onNode && !slices.Contains(testNodes, f.Node)) || (spec.onVIP && !slices.Contains(testVIPs, f.VIP)) {
				t.Fatalf("seed %d: %v has no valid target", seed, f)
			}
			if n := len(activeAt(plan, f.At)); n > MaxActiveFaults {
				t.Fatalf("seed %d: %d faults active at %v", seed, n, f.At)
			}
			for _, g := range plan[i+1:] {
				if overlap(f, g) {
					checkApart(t, seed, f, g)
				}
			}
		}
	}
}

func checkApart(t *testing.T, seed uint64, f, g PlannedFault) {
	t.Helper()
	switch {
	case f.Target() != "" && f.Target() == g.Target():
		t.Fatalf("seed %d: %v and %v hit %s at once", seed, f, g, f.Target())
	case f.Target() == "" && f.Kind == g.Kind:
		t.Fatalf("seed %d: two %s at once", seed, f.Kind)
	case isPartition(f.Kind) && isPartition(g.Kind):
		t.Fatalf("seed %d: two partitions at once: %v, %v", seed, f, g)
	case (f.Kind == FaultAPIStop && faultSpecs[g.Kind].needsAPI) || (g.Kind == FaultAPIStop && faultSpecs[f.Kind].needsAPI):
		t.Fatalf("seed %d: %v needs the API server while it is stopped (%v)", seed, g, f)
	case f.Kind == FaultAPIStop && faultSpecs[g.Kind].restartsAgent && g.End() < f.End()+agentRestartMargin,
		g.Kind == FaultAPIStop && faultSpecs[f.Kind].restartsAgent && f.End() < g.End()+agentRestartMargin:
		t.Fatalf("seed %d: %v and %v: an agent restarts in the API outage", seed, f, g)
	}
}

// Every kind shows up, a node crashes in an API outage, and quiet periods let things
// settle now and then.
func TestScheduleHasEveryKindAndQuietPeriods(t *testing.T) {
	outages := 0 // schedules with a node crash in an API outage (docs/concepts.md, "API outage")
	for seed := range uint64(20) {
		plan := schedule(t, seed, 10*time.Minute)
		kinds := map[FaultKind]bool{}
		for _, f := range plan {
			kinds[f.Kind] = true
		}
		crashInOutage := slices.ContainsFunc(plan, func(f PlannedFault) bool {
			return f.Kind == FaultNodeCrash && slices.ContainsFunc(activeAt(plan, f.At), func(g PlannedFault) bool { return g.Kind == FaultAPIStop })
		})
		outages += map[bool]int{true: 1}[crashInOutage]
		if len(kinds) != len(FaultKinds) {
			t.Errorf("seed %d: only %d of %d kinds in 10 minutes: %v", seed, len(kinds), len(FaultKinds), kinds)
		}
		quiet := 0
		for i := 1; i < len(plan); i++ {
			busyUntil := latestEnd(plan[:i])
			if plan[i].At-busyUntil >= quietMin {
				quiet++
			}
		}
		if quiet == 0 {
			t.Errorf("seed %d: no quiet period of %v in 10 minutes", seed, quietMin)
		}
	}
	if outages < 10 {
		t.Errorf("only %d of 20 schedules crash a node in an API outage", outages)
	}
}

func TestScheduleHonoursKindsAndRejectsBadOptions(t *testing.T) {
	for _, f := range schedule(t, 7, 2*time.Minute, FaultLinkFlap, FaultVIPRecreate) {
		if f.Kind != FaultLinkFlap && f.Kind != FaultVIPRecreate {
			t.Fatalf("asked for link-flap and vip-recreate, got %v", f)
		}
	}
	bad := []ScheduleOptions{
		{Duration: 0, Nodes: testNodes},
		{Duration: MaxChaosDuration + time.Second, Nodes: testNodes},
		{Duration: time.Minute, Nodes: testNodes[:2]},
	}
	for _, o := range bad {
		if _, err := Schedule(o); err == nil {
			t.Errorf("Schedule(%+v) accepted", o)
		}
	}
	if plan := schedule(t, 1, 2*time.Second); len(plan) > 1 {
		t.Errorf("a 2 s phase holds %d faults: %v", len(plan), plan)
	}
}

func TestParseFaultKinds(t *testing.T) {
	all, err := ParseFaultKinds("")
	if err != nil || !reflect.DeepEqual(all, FaultKinds) {
		t.Errorf(`ParseFaultKinds("") = %v, %v; want every kind`, all, err)
	}
	some, err := ParseFaultKinds("node-crash, api-stop")
	if err != nil || !reflect.DeepEqual(some, []FaultKind{FaultNodeCrash, FaultAPIStop}) {
		t.Errorf("ParseFaultKinds = %v, %v", some, err)
	}
	if _, err := ParseFaultKinds("node-crash,meteor"); err == nil {
		t.Error("an unknown kind was accepted")
	}
}
