package controllers

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// firstVerdictWait is how long the first election of a new VirtualIP waits for live agents
// that have not reported a verdict yet (they normally report within milliseconds).
const firstVerdictWait = 2 * time.Second

// Candidate is what the election knows of one node with an agent, for one VIP.
type Candidate struct {
	Node   string
	Labels map[string]string
	// Alive: the agent is alive (memberlist, or a fresh heartbeat).
	Alive bool
	// Draining: the agent is handing its VIPs over, or the node is cordoned.
	Draining bool
	// Reported: the agent has reported on this VIP (its checks have a first verdict).
	Reported bool
	// BoundEpoch is the epoch at which the node reports holding the VIP (0: it does not).
	BoundEpoch int64
	// Eligible: the agent reports the interface found and every check passing.
	Eligible bool
	// Since is when Eligible last changed.
	Since time.Time
	// Reason says why it is not eligible.
	Reason string
}

// ElectionInput is everything the election depends on.
type ElectionInput struct {
	VIP        *vigilv1.VirtualIP
	Candidates []Candidate
	// Owned counts the VIPs each node holds now, not counting this one.
	Owned map[string]int
	Now   time.Time
}

// Decision is the election's outcome.
type Decision struct {
	Owner    string
	Standbys []string
	// Reason of the move, when Owner differs from status.owner.
	Reason string
	// Degraded: the owner is not eligible, but no node is, so it keeps (or gets) the VIP:
	// moving it would not help and dropping it is a certain outage (fail open).
	Degraded bool
	Message  string
	// RequeueAfter asks to decide again then, with no event (a preemption delay running).
	RequeueAfter time.Duration
}

// Elect decides who holds the VIP. It is a pure, deterministic function of its input:
//
//   - Only live agents on nodes matching spec.nodeSelector are candidates; eligible ones
//     also have the interface, pass every check and are not draining.
//   - Sticky: an eligible owner keeps the VIP, unless preemption is Always and a node of
//     higher priority has been eligible for preemptionDelay.
//   - Otherwise the best eligible candidate wins: highest priority, then fewest VIPs held,
//     then a stable hash of (VIP, node), so VIPs spread across equal nodes.
//   - Fail open: with no eligible candidate, a live owner keeps the VIP (and a VIP without
//     owner goes to the best live candidate), marked Degraded. Only with no live candidate
//     is it left without owner.
//   - Standbys: the other eligible candidates in the order they would win, at most
//     MaxStandbys of them.
//   - Takeover: a live node other than the owner that reports holding the current epoch
//     took the VIP over while no controller could decide; it becomes the owner (a new
//     epoch), whatever the owner does meanwhile: it is the one serving.
func Elect(in ElectionInput) Decision {
	vip := in.VIP
	current := vip.Status.Owner
	selector, err := vip.Spec.Selector()
	if err != nil {
		return Decision{Reason: vigilv1.ReasonNoCandidate, Message: fmt.Sprintf("invalid nodeSelector: %v", err)}
	}
	f := newField(in, selector)
	better := f.better(in)
	slices.SortFunc(f.eligible, better)
	d := Decision{}
	if taker := takenOver(vip, f.live); taker != nil {
		d.Owner, d.Reason, d.Standbys = taker.Node, vigilv1.ReasonTakenOver, f.standbys(taker.Node)
		d.Message = fmt.Sprintf("%s took the address over while no controller could decide (epoch %d); it keeps it", taker.Node, vip.Status.Epoch)
		return d
	}
	owner := f.owner
	// An owner that has not reported (its agent just restarted) keeps the VIP meanwhile.
	ownerEligible := owner != nil && (owner.Eligible || !owner.Reported) && !owner.Draining

	switch {
	case ownerEligible:
		d = f.keepOrPreempt(in, *owner)
	case current == "" && f.waiting && in.Now.Sub(vip.CreationTimestamp.Time) < firstVerdictWait:
		// A new VIP: give every live agent a moment for its first verdict, so that the
		// first election already honours priorities and spreading.
		d.Message = "waiting for the agents' first health verdicts"
		d.RequeueAfter = firstVerdictWait - in.Now.Sub(vip.CreationTimestamp.Time)
	case len(f.eligible) > 0:
		d.Owner = f.eligible[0].Node
		d.Reason, d.Message = moveReason(vip, current, owner, selector, in.Candidates)
	case owner != nil:
		d = failOpen(current, *owner, sortedLive(f.live, better))
	case len(f.live) > 0:
		best := sortedLive(f.live, better)[0]
		d.Owner, d.Degraded = best.Node, true
		d.Reason, _ = moveReason(vip, current, owner, selector, in.Candidates)
		d.Message = fmt.Sprintf("no node is eligible; %s holds the address anyway: %s", best.Node, best.Reason)
	case f.waiting:
		d.Message = "waiting for the agents' first health verdicts"
	default:
		d.Reason, d.Message = vigilv1.ReasonNoCandidate, "no live agent on a node matching nodeSelector"
	}
	d.Standbys = f.standbys(d.Owner)
	if d.Owner == current && d.Reason != vigilv1.ReasonNoCandidate {
		d.Reason = ""
	}
	return d
}

// field is the election's view of the candidates for one VIP.
type field struct {
	vip *vigilv1.VirtualIP
	// live candidates that have reported a verdict, eligible the ones among them that may
	// hold the VIP (best first once sorted).
	live, eligible []Candidate
	owner          *Candidate // the current owner, if it is a live candidate
	waiting        bool       // a live candidate has not reported its first verdict yet
}

// newField sorts the candidates out: only live agents on nodes the selector matches count,
// and one that has not reported a verdict yet is a candidate for nothing (not even fail
// open) until it does.
func newField(in ElectionInput, selector labels.Selector) field {
	f := field{vip: in.VIP}
	current := in.VIP.Status.Owner
	for _, c := range in.Candidates {
		if !c.Alive || !selector.Matches(labels.Set(c.Labels)) {
			continue
		}
		if c.Node == current {
			o := c
			f.owner = &o
		}
		if !c.Reported {
			f.waiting = true
			continue
		}
		f.live = append(f.live, c)
		if c.Eligible && !c.Draining {
			f.eligible = append(f.eligible, c)
		}
	}
	return f
}

func (f *field) priority(c Candidate) int32 { return priority(f.vip, c.Labels) }

// better orders candidates best first: highest priority, then fewest VIPs held, then a
// stable hash of (VIP, node) so that VIPs spread across equal nodes.
func (f *field) better(in ElectionInput) func(a, b Candidate) int {
	return func(a, b Candidate) int {
		if d := cmp.Compare(f.priority(b), f.priority(a)); d != 0 {
			return d
		}
		if d := cmp.Compare(in.Owned[a.Node], in.Owned[b.Node]); d != 0 {
			return d
		}
		return cmp.Or(cmp.Compare(spreadHash(f.vip.Name, a.Node), spreadHash(f.vip.Name, b.Node)), cmp.Compare(a.Node, b.Node))
	}
}

// standbys are the best MaxStandbys eligible candidates other than owner, in takeover
// order: the status of a VIP that every node of a large cluster may hold must still fit
// its schema.
func (f *field) standbys(owner string) []string {
	var out []string
	for _, c := range f.eligible {
		if c.Node != owner && len(out) < vigilv1.MaxStandbys {
			out = append(out, c.Node)
		}
	}
	return out
}

// keepOrPreempt keeps the VIP on its eligible owner, unless preemption is Always and the
// best eligible node has a higher priority and has been eligible for preemptionDelay; if
// it has not been for long enough yet, the decision asks to be looked at again then.
func (f *field) keepOrPreempt(in ElectionInput, owner Candidate) Decision {
	d := Decision{Owner: owner.Node}
	spec := &f.vip.Spec
	if spec.Preemption != vigilv1.PreemptionAlways || len(f.eligible) == 0 || f.priority(f.eligible[0]) <= f.priority(owner) {
		return d
	}
	delay := time.Duration(0)
	if spec.PreemptionDelay != nil {
		delay = spec.PreemptionDelay.Duration
	}
	best := f.eligible[0]
	waited := in.Now.Sub(best.Since)
	if waited < delay {
		d.RequeueAfter = delay - waited
		return d
	}
	d.Owner, d.Reason = best.Node, vigilv1.ReasonPreempted
	d.Message = fmt.Sprintf("%s (priority %d) preempts %s (priority %d)", best.Node, f.priority(best), owner.Node, f.priority(owner))
	return d
}

// failOpen decides when nobody is eligible but the owner is live: it keeps the VIP,
// unless it is draining and someone else is alive — then the best live one takes it.
func failOpen(current string, owner Candidate, live []Candidate) Decision {
	d := Decision{Owner: current, Degraded: true}
	d.Message = fmt.Sprintf("no node is eligible; %s keeps the address: %s", current, owner.Reason)
	if !owner.Draining {
		return d
	}
	for _, c := range live {
		if c.Node != current && !c.Draining {
			d.Owner, d.Reason = c.Node, vigilv1.ReasonOwnerDraining
			d.Message = fmt.Sprintf("%s is draining and no node is eligible; %s takes the address: %s", current, c.Node, c.Reason)
			break
		}
	}
	return d
}

// takenOver finds a live node, not the owner, that reports holding the VIP at its current
// epoch: the agents' takeover while no controller could decide.
func takenOver(vip *vigilv1.VirtualIP, live []Candidate) *Candidate {
	for i := range live {
		if c := &live[i]; c.Node != vip.Status.Owner && vip.Status.Epoch > 0 && c.BoundEpoch == vip.Status.Epoch {
			return c
		}
	}
	return nil
}

func sortedLive(live []Candidate, better func(a, b Candidate) int) []Candidate {
	out := slices.Clone(live)
	// Among live but ineligible nodes, prefer those that are not draining.
	slices.SortStableFunc(out, func(a, b Candidate) int {
		if a.Draining != b.Draining {
			if a.Draining {
				return 1
			}
			return -1
		}
		return better(a, b)
	})
	return out
}

// moveReason explains why the VIP leaves its current owner.
func moveReason(vip *vigilv1.VirtualIP, current string, owner *Candidate, selector labels.Selector, all []Candidate) (string, string) {
	switch {
	case current == "":
		return vigilv1.ReasonElected, "the address had no owner"
	case owner == nil:
		for _, c := range all {
			if c.Node == current && c.Alive && !selector.Matches(labels.Set(c.Labels)) {
				return vigilv1.ReasonNotSelected, fmt.Sprintf("%s no longer matches nodeSelector", current)
			}
		}
		return vigilv1.ReasonOwnerLost, fmt.Sprintf("the agent on %s is gone", current)
	case owner.Draining:
		return vigilv1.ReasonOwnerDraining, fmt.Sprintf("%s is draining", current)
	default:
		return vigilv1.ReasonOwnerUnhealthy, fmt.Sprintf("%s is not eligible: %s", current, owner.Reason)
	}
}

// priority is the highest priority of the rules matching the node, or the default.
func priority(vip *vigilv1.VirtualIP, nodeLabels map[string]string) int32 {
	best := int32(-1)
	for _, r := range vip.Spec.Priorities {
		if r.Priority > best && r.Selects(nodeLabels) {
			best = r.Priority
		}
	}
	if best < 0 {
		return vigilv1.DefaultPriority
	}
	return best
}

// spreadHash orders equal nodes differently for each VIP, stably.
func spreadHash(vip, node string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(vip))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(node))
	return h.Sum64()
}
