package lab

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// FaultKind names one kind of fault the chaos run injects.
type FaultKind string

// The chaos run's faults. Each is bounded in time and undone by the run.
const (
	// FaultNodeCrash is a power cut: link down and SIGKILL to everything on the node; undone
	// as a reboot (without the addresses it held), the HTTP service and the agent restarted.
	FaultNodeCrash FaultKind = "node-crash"
	// FaultAgentKill SIGKILLs the node's agent while the node lives; undone by restarting
	// it, as the DaemonSet would.
	FaultAgentKill FaultKind = "agent-kill"
	// FaultLinkFlap takes the node's link down; undone by taking it up.
	FaultLinkFlap FaultKind = "link-flap"
	// FaultIsolateNode cuts the node off from everyone: peers, control plane and client.
	FaultIsolateNode FaultKind = "partition-isolate"
	// FaultSplitFromPeers cuts the node off from its peers and the control plane while the
	// client still reaches it.
	FaultSplitFromPeers FaultKind = "partition-peers"
	// FaultAPIStop freezes kube-apiserver with SIGSTOP; undone with SIGCONT.
	FaultAPIStop FaultKind = "api-stop"
	// FaultControllerKill SIGKILLs the controller; the lab restarts it like a Deployment.
	FaultControllerKill FaultKind = "controller-kill"
	// FaultServiceStop kills the node's HTTP service, so its health checks fail.
	FaultServiceStop FaultKind = "service-stop"
	// FaultCPUBurn keeps both cores busy with burner processes that stop by themselves.
	FaultCPUBurn FaultKind = "cpu-burn"
	// FaultVIPRecreate deletes a VirtualIP and creates it again under the same name.
	FaultVIPRecreate FaultKind = "vip-recreate"
)

// faultSpec bounds one kind of fault in the schedule.
type faultSpec struct {
	minFor, maxFor time.Duration
	onNode         bool // targets one node
	onVIP          bool // targets one VirtualIP
	needsAPI       bool // cannot run while the API server is stopped (it writes through it)
	// restartsAgent: the undo starts an agent, which needs the API server to start (it
	// exits without it), so the undo must not fall in an API outage; see agentRestartMargin.
	restartsAgent bool
}

// faultSpecs bounds every kind. For FaultAgentKill the duration is the restart delay; for
// FaultControllerKill it is the time the schedule leaves it alone, the lab restarting it
// after 1 s; for FaultVIPRecreate, how long the VirtualIP stays deleted.
var faultSpecs = map[FaultKind]faultSpec{
	FaultNodeCrash:      {minFor: 3 * time.Second, maxFor: 15 * time.Second, onNode: true, restartsAgent: true},
	FaultAgentKill:      {minFor: 500 * time.Millisecond, maxFor: 5 * time.Second, onNode: true, restartsAgent: true},
	FaultLinkFlap:       {minFor: 500 * time.Millisecond, maxFor: 4 * time.Second, onNode: true},
	FaultIsolateNode:    {minFor: 2 * time.Second, maxFor: 12 * time.Second, onNode: true},
	FaultSplitFromPeers: {minFor: 2 * time.Second, maxFor: 12 * time.Second, onNode: true},
	FaultAPIStop:        {minFor: 5 * time.Second, maxFor: 40 * time.Second},
	FaultControllerKill: {minFor: 3 * time.Second, maxFor: 3 * time.Second, needsAPI: true},
	FaultServiceStop:    {minFor: 2 * time.Second, maxFor: 15 * time.Second, onNode: true},
	FaultCPUBurn:        {minFor: 5 * time.Second, maxFor: 20 * time.Second},
	FaultVIPRecreate:    {minFor: time.Second, maxFor: 5 * time.Second, onVIP: true, needsAPI: true},
}

// FaultKinds lists every kind, in the order reports show them.
var FaultKinds = []FaultKind{
	FaultNodeCrash, FaultAgentKill, FaultLinkFlap, FaultIsolateNode, FaultSplitFromPeers,
	FaultAPIStop, FaultControllerKill, FaultServiceStop, FaultCPUBurn, FaultVIPRecreate,
}

// ParseFaultKinds reads a comma-separated list of kinds ("" is every kind).
func ParseFaultKinds(s string) ([]FaultKind, error) {
	if strings.TrimSpace(s) == "" {
		return slices.Clone(FaultKinds), nil
	}
	var kinds []FaultKind
	for _, part := range strings.Split(s, ",") {
		k := FaultKind(strings.TrimSpace(part))
		if _, ok := faultSpecs[k]; !ok {
			return nil, fmt.Errorf("unknown fault kind %q (want some of %s)", k, joinKinds(FaultKinds))
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

func joinKinds(kinds []FaultKind) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ",")
}

// Schedule limits: bounded in count and concurrency, with quiet periods now and then.
const (
	// MaxActiveFaults is how many faults may be active at once: two faults interact (a
	// crash during an API outage), more would leave no majority of the 4 nodes.
	MaxActiveFaults = 2
	// quietChance is the chance that a quiet period follows a fault: nothing new starts
	// until every active fault is undone and then quietMin..quietMax more, so that things
	// settle and a fault is also seen on a whole cluster.
	quietChance = 0.25
	quietMin    = 8 * time.Second
	quietMax    = 15 * time.Second
	// spacingMin..spacingMax separate two fault starts otherwise.
	spacingMin = time.Second
	spacingMax = 6 * time.Second
	// MaxChaosDuration bounds a run (the recorders run at most MaxRecording, an hour).
	MaxChaosDuration = 45 * time.Minute
	// agentRestartMargin keeps an agent's restart this long clear of the end of an API
	// outage. An agent started while kube-apiserver is stopped exits (it reads the API to
	// start), so a node restored in an outage would stay out of it, and with one more
	// faulty node the two left would be no majority of four and fence every VIP: three
	// failures, not the two a schedule allows at once.
	agentRestartMargin = 2 * time.Second
)

// PlannedFault is one fault of a schedule, at an offset from the start of the fault phase.
type PlannedFault struct {
	Kind FaultKind
	At   time.Duration
	For  time.Duration
	Node string // for node faults
	VIP  string // for FaultVIPRecreate: the VirtualIP's name
}

// End is when the fault is planned to be undone.
func (f PlannedFault) End() time.Duration { return f.At + f.For }

// Target names what the fault hits ("" for cluster-wide faults).
func (f PlannedFault) Target() string { return f.Node + f.VIP }

func (f PlannedFault) String() string {
	if t := f.Target(); t != "" {
		return fmt.Sprintf("%s %s", f.Kind, t)
	}
	return string(f.Kind)
}

// ScheduleOptions describe what a schedule may hit.
type ScheduleOptions struct {
	Seed     uint64
	Duration time.Duration // the fault phase: every fault is undone by its end
	Nodes    []string
	VIPs     []string    // VirtualIP names
	Kinds    []FaultKind // empty: every kind
}

// Schedule draws a fault schedule from the seed: the same options give the same
// schedule. Faults start 1–6 s apart, sometimes after a quiet period; at most
// MaxActiveFaults are active at once, never two on one node or VirtualIP, never two
// partitions (the lab has one partition table), and nothing that writes through the API
// server while it is stopped.
func Schedule(o ScheduleOptions) ([]PlannedFault, error) {
	if o.Duration <= 0 || o.Duration > MaxChaosDuration {
		return nil, fmt.Errorf("a chaos schedule lasts up to %v, not %v", MaxChaosDuration, o.Duration)
	}
	if len(o.Nodes) < 3 {
		return nil, fmt.Errorf("a chaos schedule needs at least 3 nodes (a majority must survive two faults), not %d", len(o.Nodes))
	}
	kinds := o.Kinds
	if len(kinds) == 0 {
		kinds = FaultKinds
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	var plan []PlannedFault
	t := between(rng, spacingMin, spacingMax)
	maxFaults := int(o.Duration/spacingMin) + 1
	for t < o.Duration && len(plan) < maxFaults {
		active := activeAt(plan, t)
		if len(active) >= MaxActiveFaults {
			t = earliestEnd(active)
			continue
		}
		f, ok := drawFault(rng, o, kinds, active, t)
		if !ok {
			if len(active) == 0 {
				break // nothing fits before the end
			}
			t = earliestEnd(active)
			continue
		}
		plan = append(plan, f)
		if rng.Float64() < quietChance {
			t = latestEnd(activeAt(plan, t)) + between(rng, quietMin, quietMax)
		} else {
			t += between(rng, spacingMin, spacingMax)
		}
	}
	return plan, nil
}

// drawFault picks a fault that may start at t beside the active ones and ends by the end
// of the phase.
func drawFault(rng *rand.Rand, o ScheduleOptions, kinds []FaultKind, active []PlannedFault, t time.Duration) (PlannedFault, bool) {
	var candidates []FaultKind
	for _, k := range kinds {
		lo, hi := durationBounds(k, active, t, o.Duration)
		if lo <= hi && len(targets(k, o, active)) > 0 && compatible(k, active) {
			candidates = append(candidates, k)
		}
	}
	if len(candidates) == 0 {
		return PlannedFault{}, false
	}
	k := candidates[rng.IntN(len(candidates))]
	spec := faultSpecs[k]
	lo, hi := durationBounds(k, active, t, o.Duration)
	f := PlannedFault{Kind: k, At: t, For: between(rng, lo, hi)}
	ts := targets(k, o, active)
	switch {
	case spec.onNode:
		f.Node = ts[rng.IntN(len(ts))]
	case spec.onVIP:
		f.VIP = ts[rng.IntN(len(ts))]
	}
	return f, true
}

// durationBounds is how long a fault of kind k starting at t may last: its kind's bounds,
// cut to end by the end of the phase, and kept so that no agent restarts in an API outage
// (an agent-restarting fault outlasts an active outage by agentRestartMargin; an outage
// ends agentRestartMargin before any active agent-restarting fault does).
func durationBounds(k FaultKind, active []PlannedFault, t, phase time.Duration) (lo, hi time.Duration) {
	spec := faultSpecs[k]
	lo, hi = spec.minFor, min(spec.maxFor, phase-t)
	for _, f := range active {
		switch {
		case spec.restartsAgent && f.Kind == FaultAPIStop:
			lo = max(lo, f.End()+agentRestartMargin-t)
		case k == FaultAPIStop && faultSpecs[f.Kind].restartsAgent:
			hi = min(hi, f.End()-agentRestartMargin-t)
		}
	}
	return lo, hi.Truncate(time.Millisecond)
}

// targets lists what a fault of kind k may hit beside the active faults: nodes or
// VirtualIPs no active fault hits; a cluster-wide fault has the one target "".
func targets(k FaultKind, o ScheduleOptions, active []PlannedFault) []string {
	spec := faultSpecs[k]
	var pool []string
	switch {
	case spec.onNode:
		pool = o.Nodes
	case spec.onVIP:
		pool = o.VIPs
	default:
		return []string{""}
	}
	var free []string
	for _, name := range pool {
		if !slices.ContainsFunc(active, func(f PlannedFault) bool { return f.Node == name || f.VIP == name }) {
			free = append(free, name)
		}
	}
	return free
}

// compatible reports whether a fault of kind k may be active together with the others.
func compatible(k FaultKind, active []PlannedFault) bool {
	for _, f := range active {
		spec := faultSpecs[k]
		switch {
		case f.Kind == k && !spec.onNode && !spec.onVIP:
			return false // one API outage, one controller kill, one CPU burn at a time
		case isPartition(k) && isPartition(f.Kind):
			return false
		case k == FaultAPIStop && faultSpecs[f.Kind].needsAPI, f.Kind == FaultAPIStop && spec.needsAPI:
			return false
		}
	}
	return true
}

func isPartition(k FaultKind) bool { return k == FaultIsolateNode || k == FaultSplitFromPeers }

// activeAt returns the faults of the plan active at t.
func activeAt(plan []PlannedFault, t time.Duration) []PlannedFault {
	var out []PlannedFault
	for _, f := range plan {
		if f.At <= t && t < f.End() {
			out = append(out, f)
		}
	}
	return out
}

func earliestEnd(fs []PlannedFault) time.Duration {
	end := fs[0].End()
	for _, f := range fs[1:] {
		end = min(end, f.End())
	}
	return end
}

func latestEnd(fs []PlannedFault) time.Duration {
	var end time.Duration
	for _, f := range fs {
		end = max(end, f.End())
	}
	return end
}

// between draws a duration in [lo, hi], to the millisecond.
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return (lo + time.Duration(rng.Int64N(int64(hi-lo)+1))).Truncate(time.Millisecond)
}
