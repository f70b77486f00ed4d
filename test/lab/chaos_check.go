package lab

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// The invariants' bounds.
const (
	// MaxDoubleHolding bounds how long two nodes may hold one VIP at once (invariant 1). A
	// planned move (a failed check, a cordon, a SIGTERM) holds the address on two nodes on
	// purpose: the old owner keeps it, silently, until the new owner's bind report reaches
	// it and then for the drain, so that its open connections finish. Anything longer is
	// two nodes answering for one address.
	MaxDoubleHolding = handoverDrain + bindReportAllowance
	// handoverDrain is the agent's --handover-drain default (the chart's).
	handoverDrain = 2 * time.Second
	// bindReportAllowance is how long the new owner's bind report may take to reach the
	// old owner (new owner -> API server -> old owner's watch), plus one kernel sampling
	// interval: in the lab a planned move held twice for 2.1 s with the default drain
	// (bounded by 2 s alone, every move off a failing node was a violation).
	bindReportAllowance = time.Second
	// FailoverBudget bounds how long a VIP may have no holder while an eligible node exists
	// (invariant 2): memberlist notices a dead owner in about 0.5 s and the controller
	// elects at once; 3 s leaves room for a slow API server under load.
	FailoverBudget = 3 * time.Second
	// APIOutageBudget replaces it while kube-apiserver is stopped: nobody can publish a
	// decision, and the first standby takes a dead owner's VIP over only after --fence-after
	// plus detection (docs/concepts.md, "API outage"; 5 s and more were measured before
	// --fence-after became 1 s).
	APIOutageBudget = 10 * time.Second
	// ControllerRestartBudget replaces it while the controller may not lead: after it was
	// SIGKILLed, or after an API outage long enough to lose its Lease (it exits then), its
	// successor waits a whole leaseDuration (15 s, client-go measures it from its own first
	// look at the old Lease) plus a retry (2 s) before it elects.
	ControllerRestartBudget = 20 * time.Second
	// ControllerReturnTail is how long after a controller kill or an API outage the
	// controller may still not lead.
	ControllerReturnTail = 20 * time.Second
	// NewVIPBudget bounds the gap after a deleted VirtualIP is created again: a new VIP's
	// first election waits up to 2 s for agents to report on it.
	NewVIPBudget = 5 * time.Second
	// FinalSettle is how long after the last fault is undone every VirtualIP must be Ready
	// on the one node that holds it (invariant 3).
	FinalSettle = 10 * time.Second
	// AttributionTail is how long after a fault is undone a window is still laid at its
	// door in reports (a restored node rejoining, a healed partition's stale holder).
	AttributionTail = 10 * time.Second
)

// allowance is a longer no-holder budget for gaps that begin in a stretch of time.
type allowance struct {
	from, to time.Time
	budget   time.Duration
}

// allowances are the longer budgets a fault gives. "An eligible node exists" always holds
// in a chaos run, since at most two faults are active and they hit distinct nodes, so two
// of the four nodes are up, connected, healthy and running an agent. What may be missing
// is someone to publish a decision (API server stopped, controller not leading: longer
// budgets), or the VirtualIP itself (deleted: no budget while it does not exist, see
// deletion; then a new VIP's). Everything else (crashes, partitions, flaps, stopped
// services, agent kills, CPU starvation) gets FailoverBudget: with a failing check on
// every node the owner keeps the VIP (fail open), so stopped services never leave it
// without a holder.
func allowances(f FaultRecord, vip string, end time.Time) []allowance {
	until := f.activeUntil(0, end)
	switch {
	case f.Kind == FaultAPIStop:
		return []allowance{
			{f.Applied, until, APIOutageBudget},
			{until, until.Add(ControllerReturnTail), ControllerRestartBudget},
		}
	case f.Kind == FaultControllerKill:
		return []allowance{{f.Applied, until.Add(ControllerReturnTail), ControllerRestartBudget}}
	case f.Kind == FaultVIPRecreate && f.VIP == vip:
		return []allowance{{f.Applied, until.Add(NewVIPBudget), NewVIPBudget}}
	}
	return nil
}

// ChaosVIP is one VirtualIP of a chaos run.
type ChaosVIP struct {
	Name    string
	Address netip.Addr
	Checked bool // has a TCP check of the node's HTTP service
}

// NodeAddrs is one node in a kernel sample: the chaos VIPs bound on an interface of it that
// is up (an address on a downed link answers nobody).
type NodeAddrs struct {
	Node string
	VIPs []netip.Addr
	Err  string // reading the node failed: it tells nothing in this sample
}

// KernelSample is what every node's kernel held at one instant.
type KernelSample struct {
	At    time.Time
	Nodes []NodeAddrs
}

// FaultRecord is a fault as it was injected: when it was applied and undone.
type FaultRecord struct {
	PlannedFault
	Applied time.Time
	Undone  time.Time // zero: never undone
	Err     string    // applying or undoing it failed
}

// activeUntil is when the fault stopped counting as active, tail added.
func (f FaultRecord) activeUntil(tail time.Duration, end time.Time) time.Time {
	if f.Undone.IsZero() {
		return end
	}
	return f.Undone.Add(tail)
}

// Observations are everything a chaos run recorded, the checker's only input.
type Observations struct {
	Start, End time.Time // the checked window: from every VIP steady to the final check
	VIPs       []ChaosVIP
	Kernel     []KernelSample      // in time order
	Client     map[string][]Sample // per VirtualIP name, in order of start
	Faults     []FaultRecord
	AgentExits []AgentExit // agents that exited by themselves (reported, not checked)
}

// Window is a stretch of time one VIP spent with two holders or with none.
type Window struct {
	VIP      string
	From, To time.Time
	Holders  []string // the nodes that held it (doubles)
	Open     bool     // still going at the end of the observations
}

// Duration is the window's length.
func (w Window) Duration() time.Duration { return w.To.Sub(w.From) }

// Violation kinds.
const (
	ViolationDoubleHolder = "double-holder"
	ViolationNoHolder     = "no-holder"
	ViolationFinalState   = "final-state"
)

// Violation is one broken invariant.
type Violation struct {
	At       time.Time
	VIP      string
	Kind     string
	Duration time.Duration
	Bound    time.Duration
	Detail   string
	Faults   []FaultRecord // the faults that may have caused it (faultsAround)
}

// Findings are the checker's verdict.
type Findings struct {
	Doubles    []Window
	Gaps       []Window
	Violations []Violation
}

// CheckInvariants checks invariants 1 (never two holders for longer than
// MaxDoubleHolding) and 2 (never no holder for longer than the budget) over the
// observations. A node holds a VIP when the address is on an interface of it that is up
// and the lab does not cut it off from the client: an address nobody can reach answers
// nobody (and one the client reaches counts, also when peers cannot).
func CheckInvariants(obs Observations) Findings {
	var f Findings
	for _, v := range obs.VIPs {
		for _, w := range doubleWindows(obs, v) {
			f.Doubles = append(f.Doubles, w)
			if w.Duration() > MaxDoubleHolding {
				f.Violations = append(f.Violations, Violation{
					At: w.From, VIP: v.Name, Kind: ViolationDoubleHolder, Duration: w.Duration(), Bound: MaxDoubleHolding,
					Detail: "held by " + strings.Join(w.Holders, ", ") + openNote(w),
					Faults: faultsAround(obs.Faults, v.Name, w.From, obs.End),
				})
			}
		}
		for _, w := range gapWindows(obs, v) {
			f.Gaps = append(f.Gaps, w)
			if budget := gapBudget(obs.Faults, w, obs.End); w.Duration() > budget {
				f.Violations = append(f.Violations, Violation{
					At: w.From, VIP: v.Name, Kind: ViolationNoHolder, Duration: w.Duration(), Bound: budget,
					Detail: "no node held it and no client request succeeded" + openNote(w),
					Faults: faultsAround(obs.Faults, v.Name, w.From, obs.End),
				})
			}
		}
	}
	slices.SortStableFunc(f.Violations, func(a, b Violation) int { return a.At.Compare(b.At) })
	return f
}

func openNote(w Window) string {
	if w.Open {
		return " (still so at the end)"
	}
	return ""
}

// holdersOf returns the nodes holding addr in the sample, and false when no node could be
// read.
func holdersOf(s KernelSample, addr netip.Addr, faults []FaultRecord) ([]string, bool) {
	var holders []string
	known := false
	for _, n := range s.Nodes {
		if n.Err != "" {
			continue
		}
		known = true
		if slices.Contains(n.VIPs, addr) && !cutFromClient(faults, n.Node, s.At) {
			holders = append(holders, n.Node)
		}
	}
	return holders, known
}

// cutFromClient reports whether a partition kept the client from reaching node at t.
func cutFromClient(faults []FaultRecord, node string, t time.Time) bool {
	for _, f := range faults {
		if f.Kind == FaultIsolateNode && f.Node == node && !f.Applied.After(t) && (f.Undone.IsZero() || t.Before(f.Undone)) {
			return true
		}
	}
	return false
}

// doubleWindows finds the stretches in which two nodes held the VIP at once, pair by pair:
// from the first kernel sample showing both to the first showing either gone, so to within
// one sampling interval (about 100 ms). Pairs, because two planned moves in a row (a to b,
// then b to c) each hold twice for their drain, and the sum is no longer one move's.
func doubleWindows(obs Observations, v ChaosVIP) []Window {
	var out []Window
	open := map[[2]string]*Window{}
	for _, s := range obs.Kernel {
		if s.At.Before(obs.Start) || s.At.After(obs.End) {
			continue
		}
		holders, known := holdersOf(s, v.Address, obs.Faults)
		if !known {
			continue
		}
		now := holderPairs(holders)
		for pair, w := range open {
			if !slices.Contains(now, pair) {
				w.To = s.At
				out = append(out, *w)
				delete(open, pair)
			}
		}
		for _, pair := range now {
			if w, ok := open[pair]; ok {
				w.To = s.At
			} else {
				open[pair] = &Window{VIP: v.Name, From: s.At, To: s.At, Holders: []string{pair[0], pair[1]}}
			}
		}
	}
	for _, w := range open {
		w.Open = true
		out = append(out, *w)
	}
	slices.SortStableFunc(out, func(a, b Window) int {
		return cmp.Or(a.From.Compare(b.From), strings.Compare(a.Holders[0]+a.Holders[1], b.Holders[0]+b.Holders[1]))
	})
	return out
}

// holderPairs lists every pair of holders, each in name order.
func holderPairs(holders []string) [][2]string {
	sorted := slices.Sorted(slices.Values(holders))
	var pairs [][2]string
	for i := range sorted {
		for _, b := range sorted[i+1:] {
			pairs = append(pairs, [2]string{sorted[i], b})
		}
	}
	return pairs
}

// gapWindows finds the stretches in which the VIP had no holder: from a kernel sample
// showing no holder to the next evidence of service, a sample showing a holder or a
// successful client request. A holder whose service fails (no check, service stopped) is
// still a holder: Vigil cannot know, and the client's failures are reported apart. While
// the VirtualIP is deleted nobody should hold it: a gap ends at the deletion and none
// starts before it exists again.
func gapWindows(obs Observations, v ChaosVIP) []Window {
	type event struct {
		at     time.Time
		served bool
	}
	var events []event
	for _, s := range obs.Kernel {
		if holders, known := holdersOf(s, v.Address, obs.Faults); known {
			events = append(events, event{s.At, len(holders) > 0})
		}
	}
	for _, s := range obs.Client[v.Name] {
		if s.OK {
			events = append(events, event{s.Start, true})
		}
	}
	slices.SortStableFunc(events, func(a, b event) int { return a.at.Compare(b.at) })
	var out []Window
	var gap *Window
	for _, e := range events {
		if e.at.Before(obs.Start) || e.at.After(obs.End) {
			continue
		}
		if deleted, ok := deletion(obs.Faults, v.Name, e.at); ok {
			if gap != nil {
				gap.To = maxTime(gap.From, deleted)
				out = append(out, *gap)
				gap = nil
			}
			continue
		}
		switch {
		case !e.served && gap == nil:
			gap = &Window{VIP: v.Name, From: e.at}
		case e.served && gap != nil:
			gap.To = e.at
			out = append(out, *gap)
			gap = nil
		}
	}
	if gap != nil {
		gap.To, gap.Open = obs.End, true
		out = append(out, *gap)
	}
	return out
}

// deletion returns when the VirtualIP named vip was deleted, if it was deleted at t.
func deletion(faults []FaultRecord, vip string, t time.Time) (time.Time, bool) {
	for _, f := range faults {
		if f.Kind == FaultVIPRecreate && f.VIP == vip && !f.Applied.After(t) && (f.Undone.IsZero() || t.Before(f.Undone)) {
			return f.Applied, true
		}
	}
	return time.Time{}, false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// gapBudget is the longest gap w of the VIP may last: FailoverBudget, or a longer
// allowance when a fault that takes the decision-makers away (or its tail) began before
// FailoverBudget had passed (a gap that the controller had the whole FailoverBudget to
// close gets no more). A re-created VirtualIP's first gap also gets the time in it when
// the controller may not have led: no agent can take over a VIP never elected.
func gapBudget(faults []FaultRecord, w Window, end time.Time) time.Duration {
	budget := FailoverBudget
	for _, f := range faults {
		for _, a := range allowances(f, w.VIP, end) {
			if !a.from.After(w.From.Add(FailoverBudget)) && !a.to.Before(w.From) {
				budget = max(budget, a.budget)
			}
		}
	}
	if recreatedAt(faults, w.VIP, w.From) {
		budget = max(budget, NewVIPBudget+leaderlessWithin(faults, w.From, w.To, end))
	}
	return budget
}

// recreatedAt reports whether the VirtualIP was created again less than a second before t.
func recreatedAt(faults []FaultRecord, vip string, t time.Time) bool {
	return slices.ContainsFunc(faults, func(f FaultRecord) bool {
		return f.Kind == FaultVIPRecreate && f.VIP == vip && !f.Undone.IsZero() && !f.Undone.After(t) && t.Sub(f.Undone) < time.Second
	})
}

// leaderlessWithin is how much of from..to the controller may not have led: API outages
// and controller kills, each with ControllerReturnTail.
func leaderlessWithin(faults []FaultRecord, from, to, end time.Time) time.Duration {
	var total time.Duration
	cursor := from // counts each instant once, however many stretches cover it
	var stretches []allowance
	for _, f := range faults {
		if f.Kind == FaultAPIStop || f.Kind == FaultControllerKill {
			stretches = append(stretches, allowance{from: f.Applied, to: f.activeUntil(ControllerReturnTail, end)})
		}
	}
	slices.SortFunc(stretches, func(a, b allowance) int { return a.from.Compare(b.from) })
	for _, st := range stretches {
		lo, hi := maxTime(st.from, cursor), st.to
		if hi.After(to) {
			hi = to
		}
		if hi.After(lo) {
			total += hi.Sub(lo)
			cursor = hi
		}
	}
	return total
}

// faultsAround returns the faults that may have caused, or stretched, a window of the VIP
// starting at from: those that hit the VIP (or the whole cluster), were active at from or
// had ended less than AttributionTail before, or began in the window's first
// FailoverBudget (as in gapBudget). Faults later in a long window are not its cause.
func faultsAround(faults []FaultRecord, vip string, from, end time.Time) []FaultRecord {
	var out []FaultRecord
	for _, f := range faults {
		if f.VIP != "" && f.VIP != vip {
			continue
		}
		if !f.Applied.After(from.Add(FailoverBudget)) && !f.activeUntil(AttributionTail, end).Before(from) {
			out = append(out, f)
		}
	}
	return out
}

// FinalVIPState is one VirtualIP after the last fault: its status, who holds it, and who
// answers the client.
type FinalVIPState struct {
	Name      string
	Err       string // the status could not be read
	Exists    bool
	Owner     string
	Ready     bool
	Holders   []string
	Answer    string // the node that answered a fresh request of the client
	AnswerErr string // or why none did
}

// FinalProblems checks invariant 3 on one look at the cluster: every VirtualIP exists, one
// node holds its address, its status names that node as owner with Ready=True, and that
// node answers the client (a holder the client's neighbour entry does not point at serves
// nobody). It returns one line per VirtualIP that is not so.
func FinalProblems(states []FinalVIPState) map[string]string {
	problems := map[string]string{}
	for _, s := range states {
		switch {
		case s.Err != "":
			problems[s.Name] = "its status could not be read: " + s.Err
		case !s.Exists:
			problems[s.Name] = "the VirtualIP does not exist"
		case len(s.Holders) != 1:
			problems[s.Name] = fmt.Sprintf("held by %d nodes (%s), want 1; status.owner %q", len(s.Holders), strings.Join(s.Holders, ", "), s.Owner)
		case s.Owner != s.Holders[0]:
			problems[s.Name] = fmt.Sprintf("held by %s but status.owner is %q", s.Holders[0], s.Owner)
		case !s.Ready:
			problems[s.Name] = fmt.Sprintf("held by its owner %s but not Ready", s.Owner)
		case s.AnswerErr != "":
			problems[s.Name] = fmt.Sprintf("held by its owner %s, Ready, but the client gets no answer: %s", s.Owner, s.AnswerErr)
		case s.Answer != s.Owner:
			problems[s.Name] = fmt.Sprintf("held by its owner %s, Ready, but the client is answered by %q", s.Owner, s.Answer)
		}
	}
	return problems
}
