package agent

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"vigil.dev/vigil/agent/address"
	"vigil.dev/vigil/agent/dataplane"
	"vigil.dev/vigil/agent/handover"
	"vigil.dev/vigil/agent/probe"
	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
)

// Timings of the agent's decisions.
const (
	// resyncPeriod bounds how long drift (an address removed by hand, a link that lost it)
	// can last before the agent repairs it.
	resyncPeriod = 10 * time.Second
	// holdTimeout bounds make-before-break: a VIP that moved away stays bound here until
	// its new owner reports it bound, or this long.
	holdTimeout = 3 * time.Second
	// holdRecheck is how often a held VIP is looked at while its new owner binds: the
	// owner's report arrives through the API, and the hold must end soon after.
	holdRecheck = 100 * time.Millisecond
	// apiDownForTakeover is how long the API server must be unreachable before agents take
	// over dead owners' VIPs themselves: a short blip is left to the controller.
	apiDownForTakeover = 2 * time.Second
	// outageRecheck is how often dead owners are looked for while the API server is down
	// (no watch event will say so).
	outageRecheck = time.Second
	// unsureWait is how long a node that may have missed a move (back from isolation or
	// from a link loss) waits to read the VirtualIPs from the API server before it binds
	// what it last knew it serves — and then only an address nobody answers for on the
	// link. While the API server is down nobody publishes a move, so the cache is the last
	// word, save for a standby that took the VIP over meanwhile: its kernel answers for
	// the address.
	unsureWait = 2 * time.Second
	// unsureRecheck is how often the read (and then the question) is tried meanwhile.
	unsureRecheck = 200 * time.Millisecond
)

// Observation is everything the agent's decision depends on, read at one instant.
type Observation struct {
	Node string
	Now  time.Time
	// NodeLabels are the labels of this node's Node.
	NodeLabels map[string]string
	// VIPs are the VirtualIPs, from the cache or (Fresh) read from the API server itself.
	// VIPs and Agents are the cache's own objects: read them, never modify them.
	VIPs  []vigilv1.VirtualIP
	Fresh bool
	// Agents are the NodeAgents (the new owner's report ends a make-before-break hold).
	Agents []vigilv1.NodeAgent
	// bound indexes the Agents' reports of VIPs bound (indexBound); Decide fills it.
	bound map[string][]boundReport
	// Members is memberlist's view of the nodes; nil when memberlist does not run here.
	Members map[string]membership.State
	// Majority: this node reaches more than half of its plausibly alive peers (see
	// Majority in fence.go); MajorityFor is how long it has without a break.
	Majority    bool
	MajorityFor time.Duration
	// APIDown is how long the API server has not answered (0: it answers).
	APIDown time.Duration
	// Isolated: neither the API server nor a majority of peers reachable for fenceAfter.
	Isolated bool
	// Links are the node's interfaces with their addresses and carrier.
	Links []address.Link
	// Health is each VirtualIP's health-check verdict on this node, by name.
	Health map[string]probe.Health
	// BindErrors are the VIPs the last apply could not bind here, by UID.
	BindErrors map[types.UID]string
	// Forwarding: this node can forward a planned move's connections (nftables works and
	// --handover-drain is not 0).
	Forwarding bool
	// AddressFree are the answers to Decision.AskLink: true when nobody answered for the
	// address on its link, false when someone did; an address not asked is absent.
	AddressFree map[netip.Addr]bool
	// FenceAfter and Drain are --fence-after and --handover-drain.
	FenceAfter, Drain time.Duration
	Memory            Memory
}

// Memory is what the agent remembers from one decision to the next; everything else is
// read again each time. Keys are VirtualIP UIDs: a VirtualIP deleted and created again
// under its name is a new object, and what was remembered of the old one is forgotten.
type Memory struct {
	// Fences is the newest epoch seen per VirtualIP: the agent never acts on an older one
	// (a stale cache must not make it bind an address that moved on).
	Fences map[types.UID]int64
	// Bound is the epoch at which each VIP is bound here, as the last apply left it.
	Bound map[types.UID]int64
	// Holds are VIPs that moved away and stay bound here, quietly, until the new owner
	// holds them (make before break) and then for the drain.
	Holds map[types.UID]Hold
	// Forwards are planned moves to this node whose old owner's connections are
	// forwarded back to it until the given time.
	Forwards map[types.UID]Forward
	// TakenOver are VIPs this node took from a dead owner while no controller could
	// decide, with the epoch they were taken at: kept until the controller publishes a
	// newer one.
	TakenOver map[types.UID]int64
	// Stale: the node was isolated and has not read the VirtualIPs from the API server
	// since; its cache may show it owning VIPs that moved meanwhile.
	Stale bool
	// LinkDown: the interface of a VIP this node owns is down or has lost its carrier.
	LinkDown bool
	// UnsureSince: when the node came back from isolation or from a link loss, while it
	// has not read the VirtualIPs from the API server since (zero otherwise). The
	// controller moves a VIP off a node that stops answering in a fraction of a second,
	// and the node's cache may not know it yet: bound again from the cache and announced,
	// the address would take the clients back to a node that lets it go a moment later —
	// and they would stay there until their neighbour entry expired, half a minute without
	// answers. See unsureWait.
	UnsureSince time.Time
}

// LinkQuestion asks whether another node answers for Address on Interface.
type LinkQuestion struct {
	Address   netip.Addr
	Interface string
}

// Hold is a VIP held quietly after it moved away.
type Hold struct {
	Until     time.Time
	Confirmed bool // the new owner reported the bind; Until then counts the drain
}

// Forward is one planned move's forwarding back to the old owner.
type Forward struct {
	Rule  handover.Rule
	Until time.Time
}

// Decision is what the agent applies.
type Decision struct {
	// Hold are the addresses the node must hold, quiet (not announced) or not.
	Hold []dataplane.VIP
	// Forward are the nftables forwarding rules of planned moves to this node.
	Forward []handover.Rule
	// Checks are the health checks to run, by VirtualIP name (only selected VIPs).
	Checks map[string]CheckSet
	// Report is the node's eligibility per selected VirtualIP, assuming Hold succeeds
	// (BoundEpoch set for what it holds at the current epoch).
	Report []vigilv1.VIPEligibility
	// TakeOver names the VIPs taken over in this decision (for logs and Events).
	TakeOver []string
	// AskLink: decide again once these addresses were asked on their links whether
	// another node answers for them (Observation.AddressFree).
	AskLink []LinkQuestion
	// ReadAPI: decide again with VirtualIPs read from the API server (Fresh) before
	// binding anything: the cache may be stale.
	ReadAPI bool
	// Memory is what to remember for the next decision.
	Memory Memory
	// Again is when to decide again at the latest.
	Again time.Duration
}

// CheckSet is the health checks of one VirtualIP and what they probe.
type CheckSet struct {
	Target probe.Target
	Checks []vigilv1.HealthCheck
}

// Decide makes the node hold exactly what it should. It is a pure function of its input:
//
//   - Identity and fencing: VirtualIPs are known by UID. A VirtualIP whose epoch is older
//     than the newest seen for it is ignored (a stale cache); a deleted one is forgotten.
//   - Ownership: the owner of the newest epoch holds and announces the address, unless a
//     live standby reports holding it at that epoch (it took it over while no controller
//     could decide, and this node came back meanwhile): the taker keeps it.
//   - Make before break: a VIP that moved away stays bound here, quiet, until the new owner
//     reports it bound at the new epoch (or holdTimeout), then for the drain, while the
//     new owner forwards the connections accepted here back to this node. Not after a move
//     from a node found dead (OwnerLost) or a confirmed takeover: it goes at once.
//   - Forwarding: the new owner of a planned move (not after OwnerLost, nor from an owner
//     memberlist says is dead) forwards the old owner's connections for the drain.
//   - Takeover: while no controller can decide (the API server unreachable, or no controller
//     alive in memberlist: the leader died, perhaps with the owner), the first live standby
//     of a dead owner takes its VIP once the owner would have fenced itself (see Takeover),
//     reports it bound, and keeps it until the controller publishes a newer epoch.
//   - Fencing: an isolated node holds nothing. Back from isolation, or from a link loss of
//     a VIP it owns, it binds nothing it serves before it has read the VirtualIPs from the
//     API server itself; if the API server does not answer within unsureWait, it binds
//     what nobody answers for on the link (a standby that took it over would).
//   - Eligibility: a selected VIP is eligible here when its interface is found and has
//     carrier, every check passes and the last bind did not fail.
func Decide(in Observation) Decision {
	in.bound = indexBound(in.Agents)
	mem := in.Memory.clone()
	d := Decision{Checks: map[string]CheckSet{}, Memory: mem, Again: resyncPeriod}
	if in.Fresh {
		mem.Stale = false
	}
	if in.Isolated {
		mem.Stale = true
	}
	unsure := unsureOfItsView(in, &mem)
	if unsure {
		d.ReadAPI = true
	}
	takeAgain := takeOvers(in, &mem, &d)
	seen := map[types.UID]bool{}
	for i := range in.VIPs {
		v := &in.VIPs[i]
		dv, ok := ToVIP(v)
		if !ok {
			continue
		}
		seen[v.UID] = true
		iface, ifaceErr := address.ResolveInterface(in.Links, v.Spec.Interface, dv.Address)
		if v.Spec.SelectsNode(in.NodeLabels) {
			d.Checks[v.Name] = CheckSet{Target: probe.Target{VIP: dv.Address, Interface: iface}, Checks: v.Spec.HealthChecks}
			d.Report = append(d.Report, eligibility(v, in, iface, ifaceErr))
		}
		if v.Status.Epoch < mem.Fences[v.UID] {
			continue // an older view than one already acted on
		}
		mem.Fences[v.UID] = v.Status.Epoch
		if e, ok := mem.TakenOver[v.UID]; ok && e != v.Status.Epoch {
			delete(mem.TakenOver, v.UID) // the controller has decided since
		}
		if unsure && !mayBindUnsure(v, dv.Address, iface, in, &mem, &d) {
			continue
		}
		if held, ok := decideVIP(v, dv, iface, in, &mem); ok {
			d.Hold = append(d.Hold, held)
		}
	}
	mem.forget(seen)
	d.Hold = onePerAddress(d.Hold, in.VIPs)
	if in.Isolated {
		// The isolated side of a partition gives everything up: the other side elects
		// new owners, and two nodes must not answer for one address.
		d.Hold, mem.Holds = nil, map[types.UID]Hold{}
	}
	d.Forward, d.Again = forwards(in, &mem, d.Again)
	markBound(d.Report, in.VIPs, d.Hold, mem)
	d.Again = nextLook(in, mem, d.Again, takeAgain)
	if unsure {
		d.Again = min(d.Again, unsureRecheck)
	}
	d.Memory = mem
	return d
}

// takeOvers runs Takeover while no controller can decide, records what this node takes
// in mem and d, and returns when to look again (0: no need).
func takeOvers(in Observation, mem *Memory, d *Decision) time.Duration {
	apiDown := in.APIDown
	if in.Fresh {
		apiDown = 0 // it has just answered
	}
	if in.Members == nil || (apiDown < apiDownForTakeover && controllerAlive(in.Members)) {
		return 0
	}
	// A majority regained a moment ago is not enough: a node back from a partition sees
	// its peers before memberlist has told it the owner lives.
	steady := in.Majority && in.MajorityFor >= in.FenceAfter
	take, again := Takeover(in.Node, in.VIPs, in.Members, steady, in.FenceAfter, in.Now)
	for _, name := range take {
		if v := findVIP(in.VIPs, name); v != nil && mem.TakenOver[v.UID] != v.Status.Epoch {
			mem.TakenOver[v.UID] = v.Status.Epoch
			d.TakeOver = append(d.TakeOver, name)
		}
	}
	return again
}

// unsureOfItsView follows whether the node may have missed a move (Memory.LinkDown,
// UnsureSince) and says whether it is unsure of its view: back from isolation or from a
// link loss of a VIP it owns, it has not read the VirtualIPs from the API server since.
func unsureOfItsView(in Observation, mem *Memory) bool {
	down := false
	for i := range in.VIPs {
		v := &in.VIPs[i]
		dv, ok := ToVIP(v)
		if !ok || v.Status.Owner != in.Node {
			continue
		}
		if _, err := address.ResolveInterface(in.Links, v.Spec.Interface, dv.Address); address.IsLinkDown(err) {
			down = true
		}
	}
	back := mem.LinkDown && !down
	mem.LinkDown = down
	switch {
	case in.Fresh:
		mem.UnsureSince = time.Time{}
	case in.Isolated || down:
		mem.UnsureSince = time.Time{} // it holds nothing meanwhile; unsure from its return
	case (back || mem.Stale) && mem.UnsureSince.IsZero():
		mem.UnsureSince = in.Now
	}
	return !mem.UnsureSince.IsZero()
}

// servesHere: this node would serve the VIP, as its owner or as the standby that took it
// over.
func servesHere(v *vigilv1.VirtualIP, in Observation, mem *Memory) bool {
	return (v.Status.Owner == in.Node && takenOverBy(v, in) == "") || hasKey(mem.TakenOver, v.UID)
}

// mayBindUnsure says whether a node unsure of its view may serve v now: a VIP it is not
// about to bind (served elsewhere, or bound here since) is none of its concern; one it
// would bind waits unsureWait, then is bound only when nobody answered for its address on
// the link — the question is added to d when not asked yet.
func mayBindUnsure(v *vigilv1.VirtualIP, addr netip.Addr, iface string, in Observation, mem *Memory, d *Decision) bool {
	if !servesHere(v, in, mem) || mem.Bound[v.UID] != 0 {
		return true
	}
	free, asked := in.AddressFree[addr]
	switch {
	case in.Now.Sub(mem.UnsureSince) < unsureWait:
	case !asked:
		d.AskLink = append(d.AskLink, LinkQuestion{Address: addr, Interface: iface})
	case free:
		return true
	}
	delete(mem.Holds, v.UID)
	return false
}

// decideVIP decides whether this node holds one VirtualIP, and how.
func decideVIP(v *vigilv1.VirtualIP, dv dataplane.VIP, iface string, in Observation, mem *Memory) (dataplane.VIP, bool) {
	switch {
	case v.Status.Owner == in.Node && takenOverBy(v, in) != "":
		// A standby took it over while no controller could decide, and holds it at this
		// epoch: it is the one serving, and the controller will confirm it. This node,
		// back meanwhile, must not answer beside it.
		delete(mem.Holds, v.UID)
		return dataplane.VIP{}, false
	case v.Status.Owner == in.Node:
		delete(mem.Holds, v.UID)
		if _, ok := mem.Forwards[v.UID]; !ok && mem.Bound[v.UID] == 0 && in.Forwarding {
			if to, ok := oldOwnerAddr(v, in.Node, in.Agents, in.Members); ok {
				mem.Forwards[v.UID] = Forward{
					Rule:  handover.Rule{Interface: iface, VIP: dv.Address, To: to, Window: in.Drain},
					Until: in.Now.Add(in.Drain),
				}
			}
		}
		return dv, true
	case hasKey(mem.TakenOver, v.UID):
		delete(mem.Holds, v.UID)
		if other := boundElsewhere(v, in, false); other != "" {
			// The old owner came back and bound it too before it saw this node's report:
			// it releases as soon as it does; announce again to take its clients back.
			dv.Claim += " contested by " + other
		}
		return dv, true
	case v.Status.Owner != "" && mem.Bound[v.UID] != 0 && keepsConnections(v):
		h, ok := mem.Holds[v.UID]
		if !ok {
			h = Hold{Until: in.Now.Add(holdTimeout)}
		}
		if !h.Confirmed && confirmed(in.Agents, v) {
			h = Hold{Until: in.Now.Add(in.Drain), Confirmed: true}
		}
		mem.Holds[v.UID] = h
		if !in.Now.Before(h.Until) {
			return dataplane.VIP{}, false
		}
		dv.Quiet = true // the new owner announces it now
		return dv, true
	default:
		delete(mem.Holds, v.UID)
		return dataplane.VIP{}, false
	}
}

// onePerAddress keeps one hold per address. The controller never gives one address to two
// VirtualIPs (the older keeps it, the newer is in Conflict), but a cache can show both
// for a moment: then the announced hold wins over a quiet one, the older VirtualIP over
// the newer.
func onePerAddress(holds []dataplane.VIP, vips []vigilv1.VirtualIP) []dataplane.VIP {
	better := func(a, b dataplane.VIP) bool {
		if a.Quiet != b.Quiet {
			return !a.Quiet
		}
		va, vb := findVIP(vips, a.Name), findVIP(vips, b.Name)
		if !va.CreationTimestamp.Equal(&vb.CreationTimestamp) {
			return va.CreationTimestamp.Before(&vb.CreationTimestamp)
		}
		return a.Name < b.Name
	}
	byAddr := map[netip.Addr]int{}
	var out []dataplane.VIP
	for _, h := range holds {
		i, dup := byAddr[h.Address]
		switch {
		case !dup:
			byAddr[h.Address] = len(out)
			out = append(out, h)
		case better(h, out[i]):
			out[i] = h
		}
	}
	return out
}

// boundElsewhere names another node that reports holding v at its current epoch; alive
// requires memberlist to show it alive (when memberlist runs here).
func boundElsewhere(v *vigilv1.VirtualIP, in Observation, alive bool) string {
	if v.Status.Epoch == 0 {
		return ""
	}
	reports := in.bound[v.Name]
	if in.bound == nil {
		reports = indexBound(in.Agents)[v.Name]
	}
	for _, r := range reports {
		if r.node == in.Node || (r.uid != "" && r.uid != v.UID) || r.epoch != v.Status.Epoch {
			continue
		}
		if m, ok := in.Members[r.node]; !alive || in.Members == nil || (ok && m.Alive) {
			return r.node
		}
	}
	return ""
}

// boundReport is one NodeAgent's report of a VIP bound at an epoch.
type boundReport struct {
	node  string
	uid   types.UID
	epoch int64
}

// indexBound lists, per VIP name, the NodeAgents' reports of it bound, in the agents'
// order. Every NodeAgent reports on every VIP, so looking a VIP's reports up agent by
// agent made a decision nodes × VIPs² steps: 1000 VIPs on 20 nodes kept every agent
// busy for seconds at each change. Bound reports are few: one or two per VIP.
func indexBound(agents []vigilv1.NodeAgent) map[string][]boundReport {
	out := map[string][]boundReport{}
	for i := range agents {
		for _, r := range agents[i].Status.VIPs {
			if r.BoundEpoch != 0 {
				out[r.Name] = append(out[r.Name], boundReport{node: agents[i].Name, uid: r.UID, epoch: r.BoundEpoch})
			}
		}
	}
	return out
}

// takenOverBy names a live node other than this one that reports holding v at its
// current epoch: a standby's takeover while no controller could decide ("" if none).
func takenOverBy(v *vigilv1.VirtualIP, in Observation) string { return boundElsewhere(v, in, true) }

// keepsConnections reports whether a move away from this node is one whose connections are
// worth a make-before-break hold. Not when the controller took the VIP from a node it
// found dead, or confirmed a standby's takeover: whatever this node still serves was
// given up for lost, and holding it would leave two holders.
func keepsConnections(v *vigilv1.VirtualIP) bool {
	t := v.Status.LastTransition
	return t == nil || (t.Reason != vigilv1.ReasonOwnerLost && t.Reason != vigilv1.ReasonTakenOver)
}

// eligibility is the node's report on one selected VirtualIP.
func eligibility(v *vigilv1.VirtualIP, in Observation, iface string, ifaceErr error) vigilv1.VIPEligibility {
	h, ok := in.Health[v.Name]
	switch {
	case ok:
	case len(v.Spec.HealthChecks) == 0: // nothing to wait for
		h = probe.Health{Eligible: true}
	default: // the checks are not even set up yet
		h = probe.Health{Unknown: true, Reason: vigilv1.NoVerdictYet}
	}
	rep := vigilv1.VIPEligibility{Name: v.Name, UID: v.UID, Eligible: h.Eligible, Pending: h.Unknown, Reason: h.Reason, Interface: iface,
		HardwareAddress: hardwareAddr(in.Links, iface)}
	switch {
	case ifaceErr != nil:
		rep.Eligible, rep.Reason = false, ifaceErr.Error()
	case in.BindErrors[v.UID] != "":
		rep.Eligible, rep.Reason = false, "cannot bind the address: "+in.BindErrors[v.UID]
	}
	rep.Reason = vigilv1.Truncate(rep.Reason, vigilv1.MaxReasonLength)
	return rep
}

// forwards keeps the forwarding rules of planned moves that still run here, and says
// when the first one ends.
func forwards(in Observation, mem *Memory, again time.Duration) ([]handover.Rule, time.Duration) {
	var rules []handover.Rule
	for uid, f := range mem.Forwards {
		v := findVIPByUID(in.VIPs, uid)
		if v == nil || v.Status.Owner != in.Node || !in.Now.Before(f.Until) || in.Isolated {
			delete(mem.Forwards, uid)
			continue
		}
		rules = append(rules, f.Rule)
		again = min(again, f.Until.Sub(in.Now))
	}
	slices.SortFunc(rules, func(a, b handover.Rule) int { return a.VIP.Compare(b.VIP) })
	return rules, again
}

// markBound sets BoundEpoch in the report for the VIPs this node holds as owner (or took
// over) at the current epoch. The apply confirms it: what fails to bind is reported
// otherwise.
func markBound(report []vigilv1.VIPEligibility, vips []vigilv1.VirtualIP, hold []dataplane.VIP, mem Memory) {
	held := map[string]bool{}
	for _, h := range hold {
		if !h.Quiet {
			held[h.Name] = true
		}
	}
	for i := range report {
		if !held[report[i].Name] {
			continue
		}
		v := findVIP(vips, report[i].Name)
		if v == nil {
			continue
		}
		if v.Status.Owner != "" && mem.Fences[v.UID] == v.Status.Epoch {
			report[i].BoundEpoch = v.Status.Epoch
		}
	}
}

// nextLook is when to decide again at the latest.
func nextLook(in Observation, mem Memory, again, takeAgain time.Duration) time.Duration {
	if len(mem.Holds) > 0 {
		again = min(again, holdRecheck)
	}
	if takeAgain > 0 {
		again = min(again, takeAgain)
	}
	if in.APIDown >= apiDownForTakeover {
		again = min(again, outageRecheck)
	}
	return max(again, time.Millisecond)
}

func (m Memory) clone() Memory {
	return Memory{
		Fences: cloneMap(m.Fences), Bound: cloneMap(m.Bound), Holds: cloneMap(m.Holds),
		Forwards: cloneMap(m.Forwards), TakenOver: cloneMap(m.TakenOver), Stale: m.Stale,
		LinkDown: m.LinkDown, UnsureSince: m.UnsureSince,
	}
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return maps.Clone(m)
}

// forget drops what is remembered of VirtualIPs that no longer exist.
func (m *Memory) forget(exists map[types.UID]bool) {
	deleteMissing(m.Fences, exists)
	deleteMissing(m.Bound, exists)
	deleteMissing(m.Holds, exists)
	deleteMissing(m.Forwards, exists)
	deleteMissing(m.TakenOver, exists)
}

func deleteMissing[V any](m map[types.UID]V, exists map[types.UID]bool) {
	maps.DeleteFunc(m, func(u types.UID, _ V) bool { return !exists[u] })
}

// ToVIP converts a VirtualIP to the data plane's view.
func ToVIP(v *vigilv1.VirtualIP) (dataplane.VIP, bool) {
	addr, err := netip.ParseAddr(v.Spec.Address)
	if err != nil {
		return dataplane.VIP{}, false // the schema admits only IP literals
	}
	return dataplane.VIP{
		Name:      v.Name,
		Address:   addr,
		PrefixLen: v.Spec.EffectivePrefixLength(),
		Interface: v.Spec.Interface,
		Claim:     fmt.Sprintf("epoch %d", v.Status.Epoch),
		Announce: dataplane.Announce{
			Count:    int(v.Spec.Announce.Count),
			Interval: v.Spec.Announce.Interval.Duration,
			Refresh:  v.Spec.Announce.RefreshInterval.Duration,
		},
	}, true
}

// oldOwnerAddr is where this node, v's new owner, forwards the old owner's connections:
// the old owner's interface for v, as it reports it. A move away from a dead agent has no
// connections left to keep (members: memberlist's view, nil without memberlist).
func oldOwnerAddr(v *vigilv1.VirtualIP, node string, agents []vigilv1.NodeAgent, members map[string]membership.State) (net.HardwareAddr, bool) {
	t := v.Status.LastTransition
	if t == nil || t.To != node || t.From == "" || t.From == node || t.Reason == vigilv1.ReasonOwnerLost {
		return nil, false
	}
	if st, ok := members[t.From]; ok && !st.Alive {
		return nil, false
	}
	rep := findNodeAgent(agents, t.From).Status.Entry(v) // a node holding v has its entry
	if rep == nil {
		return nil, false
	}
	mac, err := net.ParseMAC(rep.HardwareAddress)
	return mac, err == nil
}

// confirmed reports whether v's owner reports it bound at v's epoch.
func confirmed(agents []vigilv1.NodeAgent, v *vigilv1.VirtualIP) bool {
	rep := findNodeAgent(agents, v.Status.Owner).Status.Entry(v) // a node holding v has its entry
	return rep != nil && rep.BoundEpoch == v.Status.Epoch
}

// hardwareAddr is the link-layer address of the interface named iface, or "".
func hardwareAddr(links []address.Link, iface string) string {
	for _, l := range links {
		if l.Name == iface && len(l.HardwareAddr) > 0 {
			return l.HardwareAddr.String()
		}
	}
	return ""
}

func findVIP(vips []vigilv1.VirtualIP, name string) *vigilv1.VirtualIP {
	for i := range vips {
		if vips[i].Name == name {
			return &vips[i]
		}
	}
	return nil
}

func findVIPByUID(vips []vigilv1.VirtualIP, uid types.UID) *vigilv1.VirtualIP {
	for i := range vips {
		if vips[i].UID == uid {
			return &vips[i]
		}
	}
	return nil
}

// findNodeAgent returns the named NodeAgent, or an empty one.
func findNodeAgent(agents []vigilv1.NodeAgent, name string) *vigilv1.NodeAgent {
	for i := range agents {
		if agents[i].Name == name {
			return &agents[i]
		}
	}
	return &vigilv1.NodeAgent{}
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}
