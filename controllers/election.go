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

// FirstVerdictWait is how long the first election of a new VirtualIP waits for live agents
// that have not reported a verdict yet (they normally report within milliseconds).
const FirstVerdictWait = 2 * time.Second

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
	var live, eligible []Candidate
	var owner *Candidate
	waiting := false
	for _, c := range in.Candidates {
		if !c.Alive || !selector.Matches(labels.Set(c.Labels)) {
			continue
		}
		if !c.Reported {
			// No verdict yet: not a candidate (nor a fail-open one) until it reports.
			waiting = true
			if c.Node == current {
				o := c
				owner = &o
			}
			continue
		}
		live = append(live, c)
		if c.Eligible && !c.Draining {
			eligible = append(eligible, c)
		}
		if c.Node == current {
			o := c
			owner = &o
		}
	}
	prio := func(c Candidate) int32 { return priority(vip, c.Labels) }
	better := func(a, b Candidate) int {
		if d := cmp.Compare(prio(b), prio(a)); d != 0 {
			return d
		}
		if d := cmp.Compare(in.Owned[a.Node], in.Owned[b.Node]); d != 0 {
			return d
		}
		return cmp.Or(cmp.Compare(spreadHash(vip.Name, a.Node), spreadHash(vip.Name, b.Node)), cmp.Compare(a.Node, b.Node))
	}
	slices.SortFunc(eligible, better)
	// The best MaxStandbys in takeover order: the status of a VIP that every node of a
	// large cluster may hold must still fit its schema.
	standbys := func(owner string) []string {
		var out []string
		for _, c := range eligible {
			if c.Node != owner && len(out) < vigilv1.MaxStandbys {
				out = append(out, c.Node)
			}
		}
		return out
	}
	d := Decision{}
	if taker := takenOver(vip, live); taker != nil {
		d.Owner, d.Reason, d.Standbys = taker.Node, vigilv1.ReasonTakenOver, standbys(taker.Node)
		d.Message = fmt.Sprintf("%s took the address over while no controller could decide (epoch %d); it keeps it", taker.Node, vip.Status.Epoch)
		return d
	}
	// An owner that has not reported (its agent just restarted) keeps the VIP meanwhile.
	ownerEligible := owner != nil && (owner.Eligible || !owner.Reported) && !owner.Draining

	switch {
	case ownerEligible:
		d.Owner = current
		if vip.Spec.Preemption == vigilv1.PreemptionAlways && len(eligible) > 0 && prio(eligible[0]) > prio(*owner) {
			delay := time.Duration(0)
			if vip.Spec.PreemptionDelay != nil {
				delay = vip.Spec.PreemptionDelay.Duration
			}
			best := eligible[0]
			if waited := in.Now.Sub(best.Since); waited >= delay {
				d.Owner, d.Reason = best.Node, vigilv1.ReasonPreempted
				d.Message = fmt.Sprintf("%s (priority %d) preempts %s (priority %d)", best.Node, prio(best), current, prio(*owner))
			} else {
				d.RequeueAfter = delay - waited
			}
		}
	case current == "" && waiting && in.Now.Sub(vip.CreationTimestamp.Time) < FirstVerdictWait:
		// A new VIP: give every live agent a moment for its first verdict, so that the
		// first election already honours priorities and spreading.
		d.Message = "waiting for the agents' first health verdicts"
		d.RequeueAfter = FirstVerdictWait - in.Now.Sub(vip.CreationTimestamp.Time)
	case len(eligible) > 0:
		d.Owner = eligible[0].Node
		d.Reason, d.Message = moveReason(vip, current, owner, selector, in.Candidates)
	case owner != nil:
		// Nobody is eligible: the live owner keeps it (fail open), unless it is draining
		// and someone else is alive — then hand over to the best live one.
		d.Owner, d.Degraded = current, true
		d.Message = fmt.Sprintf("no node is eligible; %s keeps the address: %s", current, owner.Reason)
		if owner.Draining {
			for _, c := range sortedLive(live, better) {
				if c.Node != current && !c.Draining {
					d.Owner, d.Reason = c.Node, vigilv1.ReasonOwnerDraining
					d.Message = fmt.Sprintf("%s is draining and no node is eligible; %s takes the address: %s", current, c.Node, c.Reason)
					break
				}
			}
		}
	case len(live) > 0:
		best := sortedLive(live, better)[0]
		d.Owner, d.Degraded = best.Node, true
		d.Reason, _ = moveReason(vip, current, owner, selector, in.Candidates)
		d.Message = fmt.Sprintf("no node is eligible; %s holds the address anyway: %s", best.Node, best.Reason)
	case waiting:
		d.Message = "waiting for the agents' first health verdicts"
	default:
		d.Reason, d.Message = vigilv1.ReasonNoCandidate, "no live agent on a node matching nodeSelector"
	}
	d.Standbys = standbys(d.Owner)
	if d.Owner == current && d.Reason != vigilv1.ReasonNoCandidate {
		d.Reason = ""
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
