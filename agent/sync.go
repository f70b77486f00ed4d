package agent

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"vigil.dev/vigil/agent/address"
	"vigil.dev/vigil/agent/dataplane"
	"vigil.dev/vigil/agent/handover"
	"vigil.dev/vigil/agent/probe"
	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// +kubebuilder:rbac:groups=vigil.dev,resources=virtualips,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// Events about cluster-scoped objects (VirtualIPs, NodeAgents) live in the default namespace.
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch,namespace=default
// The metrics endpoint authenticates and authorizes its scrapers (--metrics-secure).
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// nodeLinks reads the node's interfaces and says when they change (address.Netlink).
type nodeLinks interface {
	Links() ([]address.Link, error)
	DefaultGateways() ([]netip.Addr, error)
	Watch(ctx context.Context, onChange func()) error
}

// freshReadTimeout bounds a read of the VirtualIPs from the API server itself: the sync
// must not hang on an API server that does not answer.
const freshReadTimeout = 2 * time.Second

// minFreshRead is the shortest read tried once a node unsure of its view has waited
// unsureWait: the link decides then, and the read only gets a chance to spare the question.
const minFreshRead = 100 * time.Millisecond

// freshReadBudget is how long the read of the VirtualIPs may take: freshReadTimeout, but
// for a node unsure of its view (since unsureSince) no longer than until unsureWait ends,
// when the link decides. Back from a partition the node's connection to the API server
// can stay stuck for seconds (TCP retransmits back off during the cut): a whole 2 s read
// after the 2 s wait kept a VIP without a holder for 4.7 s in a chaos run. Pure.
func freshReadBudget(unsureSince, now time.Time) time.Duration {
	if unsureSince.IsZero() {
		return freshReadTimeout
	}
	return min(freshReadTimeout, max(unsureSince.Add(unsureWait).Sub(now), minFreshRead))
}

// bindErrorMemory is how long a failed bind keeps the node ineligible for that VIP: long
// enough for the controller to move it elsewhere and not back at once, short enough that
// a fixed cause (the foreign address removed) is noticed soon.
const bindErrorMemory = 30 * time.Second

// nodeSync makes the node hold exactly the VIPs it should: it reads the world, lets Decide
// choose, applies that (forwarding rules, addresses, health checks) and reports the node's
// eligibility. Every event maps to the same request, so bursts collapse into one sync.
type nodeSync struct {
	client client.Client // the cache
	reader client.Reader // the API server itself, after isolation
	node   string
	clock  clock.PassiveClock
	links  nodeLinks
	dp     *dataplane.Dataplane
	probes *probe.Manager
	report *reporter
	gossip *gossip
	fence  *fenceWatch
	fwd    handover.Forwarder // nil: no forwarding (--handover-drain=0 or no nftables)
	asker  linkAsker          // nil: a node unsure of its view waits for the API server
	drain  time.Duration      // --handover-drain
	// metrics and events tell operators what the agent does (nil: neither).
	metrics *metrics
	events  events.EventRecorder
	// wake makes the sync run now (memberlist, probes, the fence changed something).
	wake chan event.GenericEvent

	mu         sync.Mutex
	memory     Memory
	bindErrors map[types.UID]bindError
	failures   map[string]string // VIP name -> the error last logged, to log each once

	verdictsMu sync.Mutex
	verdicts   map[string]bool // VIP name -> last health verdict here, for Events on flips
}

type bindError struct {
	reason string
	until  time.Time
}

var syncRequest = reconcile.Request{NamespacedName: types.NamespacedName{Name: "node"}}

// Reconcile reads, decides, applies and reports.
func (s *nodeSync) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	in, err := s.observe(ctx, false)
	if err != nil {
		return ctrl.Result{}, err
	}
	d := Decide(in)
	if d.ReadAPI {
		readCtx, cancel := context.WithTimeout(ctx, freshReadBudget(d.Memory.UnsureSince, in.Now))
		fresh, err := s.observe(readCtx, true)
		cancel()
		if err == nil {
			in, d = fresh, Decide(fresh)
		} else {
			// Back from isolation or a link loss: the decision binds nothing this node
			// serves before the read succeeds or, after unsureWait, the link says nobody
			// else holds it.
			log.FromContext(ctx).V(1).Info("cannot read the VirtualIPs from the API server; unsure of what moved meanwhile", "error", err.Error())
		}
	}
	if len(d.AskLink) > 0 && s.asker != nil {
		in.AddressFree = s.askLink(ctx, d.AskLink)
		d = Decide(in)
	}
	for _, name := range d.TakeOver {
		log.FromContext(ctx).Info("no controller can decide (API server unreachable, or no leader): taking over a VIP whose owner died", "vip", name)
		s.vipEvent(ctx, name, corev1.EventTypeWarning, "TakenOver", "Takeover",
			"%s takes the address over: its owner died and no controller can decide (API server unreachable, or no leader)", s.node)
	}
	s.runChecks(d.Checks)
	results, syncErr := s.apply(ctx, d)
	reports, memory, bindErrs := settle(d, results, in.VIPs)
	s.mu.Lock()
	s.memory = memory
	for uid, reason := range bindErrs {
		s.bindErrors[uid] = bindError{reason: reason, until: in.Now.Add(bindErrorMemory)}
	}
	s.mu.Unlock()
	compact, settles := omitSettled(reports, in.VIPs, in.Now)
	s.report.Set(compact)
	s.reportGateways(ctx)
	s.metrics.observeSync(results)
	s.metrics.observeReports(reports)
	s.logFailures(ctx, results)
	if syncErr != nil {
		return ctrl.Result{}, fmt.Errorf("syncing addresses: %w", syncErr)
	}
	if settles > 0 {
		d.Again = min(d.Again, settles)
	}
	return ctrl.Result{RequeueAfter: d.Again}, nil
}

// linkAsker asks the link whether another node answers for an address (announce.Raw).
type linkAsker interface {
	InUse(ctx context.Context, ifname string, addr netip.Addr, wait time.Duration) (bool, error)
}

// linkAnswerWait is how long an answer for an address is waited for: a kernel that holds
// it answers within milliseconds on a LAN, and the VIP waits meanwhile.
const linkAnswerWait = 300 * time.Millisecond

// askLink asks the questions at once and returns, per address, whether nobody answered.
// A question that could not be asked counts as answered: nothing is bound on a guess.
func (s *nodeSync) askLink(ctx context.Context, qs []LinkQuestion) map[netip.Addr]bool {
	free := make([]bool, len(qs))
	var wg sync.WaitGroup
	for i, q := range qs {
		wg.Go(func() {
			used, err := s.asker.InUse(ctx, q.Interface, q.Address, linkAnswerWait)
			if err != nil {
				log.FromContext(ctx).Error(err, "cannot ask the link who holds the address", "address", q.Address.String(), "interface", q.Interface)
				return
			}
			free[i] = !used
		})
	}
	wg.Wait()
	out := map[netip.Addr]bool{}
	for i, q := range qs {
		out[q.Address] = free[i]
		// Asked again at every look while the API server stays away: only the answer that
		// lets this node bind is news.
		l := log.FromContext(ctx).V(1)
		if free[i] {
			l = log.FromContext(ctx)
		}
		l.Info("asked the link who holds the address", "address", q.Address.String(), "interface", q.Interface, "heldElsewhere", !free[i])
	}
	return out
}

// observe reads everything Decide needs; fresh reads the VirtualIPs from the API server
// itself instead of the cache.
func (s *nodeSync) observe(ctx context.Context, fresh bool) (Observation, error) {
	in := Observation{Node: s.node, Now: s.clock.Now(), Fresh: fresh, Forwarding: s.fwd != nil,
		FenceAfter: s.fence.after, Drain: s.drain}
	var list vigilv1.VirtualIPList
	var reader client.Reader = s.client
	if fresh {
		reader = s.reader
	}
	// The lists are the cache's own objects, not copies: Decide only reads them, and every
	// NodeAgent reports on every VIP, so a copy per sync was nodes × VIPs reports.
	if err := reader.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return in, fmt.Errorf("listing VirtualIPs: %w", err)
	}
	var node corev1.Node
	if err := s.client.Get(ctx, client.ObjectKey{Name: s.node}, &node); err != nil {
		return in, fmt.Errorf("reading Node %s: %w", s.node, err)
	}
	var agents vigilv1.NodeAgentList
	if err := s.client.List(ctx, &agents, client.UnsafeDisableDeepCopy); err != nil {
		return in, fmt.Errorf("listing NodeAgents: %w", err)
	}
	links, err := s.links.Links()
	if err != nil {
		return in, err
	}
	in.VIPs, in.NodeLabels, in.Agents, in.Links = list.Items, node.Labels, agents.Items, links
	in.Members = s.gossip.states()
	in.Majority, in.MajorityFor, in.APIDown, in.Isolated = s.fence.state()
	in.Health = map[string]probe.Health{}
	for _, name := range s.probes.VIPs() {
		in.Health[name] = s.probes.Health(name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in.Memory = s.memory
	in.BindErrors = map[types.UID]string{}
	for uid, e := range s.bindErrors {
		if in.Now.Before(e.until) {
			in.BindErrors[uid] = e.reason
		} else {
			delete(s.bindErrors, uid)
		}
	}
	return in, nil
}

// reportGateways publishes the node's default gateways in its NodeAgent, so that the
// controller refuses a VirtualIP with one of them.
func (s *nodeSync) reportGateways(ctx context.Context) {
	gws, err := s.links.DefaultGateways()
	if err != nil {
		log.FromContext(ctx).Error(err, "cannot list the default gateways")
		return
	}
	out := make([]string, 0, len(gws))
	for _, gw := range gws {
		out = append(out, gw.String())
	}
	s.report.SetGateways(out)
}

// runChecks makes the probe manager run exactly the decided health checks.
func (s *nodeSync) runChecks(checks map[string]CheckSet) {
	for name, c := range checks {
		s.probes.Set(name, c.Target, c.Checks)
	}
	for _, name := range s.probes.VIPs() {
		if _, ok := checks[name]; !ok {
			s.probes.Remove(name)
			s.verdictsMu.Lock()
			delete(s.verdicts, name)
			s.verdictsMu.Unlock()
		}
	}
}

// apply installs the forwarding rules, then the addresses: the old owner's connections
// must never meet this node's kernel alone.
func (s *nodeSync) apply(ctx context.Context, d Decision) (map[string]dataplane.Result, error) {
	if s.fwd != nil {
		if err := s.fwd.Sync(d.Forward); err != nil {
			log.FromContext(ctx).Error(err, "cannot forward the old owner's connections; a planned move may reset them")
		}
	}
	return s.dp.Sync(d.Hold)
}

// settle completes the decision with what the apply did: the epochs bound here, and the
// VIPs that could not be bound, which the node reports ineligible with the error. Pure.
func settle(d Decision, results map[string]dataplane.Result, vips []vigilv1.VirtualIP) (
	[]vigilv1.VIPEligibility, Memory, map[types.UID]string) {
	mem := d.Memory
	mem.Bound = map[types.UID]int64{}
	bindErrs := map[types.UID]string{}
	byName := make(map[string]*vigilv1.VirtualIP, len(vips))
	for i := range vips {
		byName[vips[i].Name] = &vips[i]
	}
	for name, r := range results {
		v := byName[name]
		if v == nil {
			continue
		}
		if r.Bound {
			mem.Bound[v.UID] = v.Status.Epoch
		}
		// A missing interface (or carrier) is judged afresh by every decision; only a bind
		// the kernel refused is remembered, so that a recovered link counts at once.
		if r.Err != nil && !address.IsNoInterface(r.Err) {
			bindErrs[v.UID] = r.Err.Error()
		}
	}
	reports := make([]vigilv1.VIPEligibility, len(d.Report))
	copy(reports, d.Report)
	for i := range reports {
		r, ok := results[reports[i].Name]
		if !ok || !r.Bound {
			reports[i].BoundEpoch = 0
		}
		if ok && r.Err != nil {
			reason := "cannot bind the address: " + r.Err.Error()
			if address.IsNoInterface(r.Err) {
				reason = r.Err.Error()
			}
			reports[i].Eligible, reports[i].Reason = false, vigilv1.Truncate(reason, vigilv1.MaxReasonLength)
		}
	}
	return reports, mem, bindErrs
}

// logFailures logs a VIP this node cannot hold when its reason changes (not every resync),
// and records it as an Event.
func (s *nodeSync) logFailures(ctx context.Context, results map[string]dataplane.Result) {
	s.mu.Lock()
	now := map[string]string{}
	var fresh []string
	for name, r := range results {
		if r.Err != nil {
			now[name] = r.Err.Error()
			if s.failures[name] != now[name] {
				log.FromContext(ctx).Error(r.Err, "cannot hold VIP on this node", "vip", name)
				fresh = append(fresh, name)
			}
		}
	}
	s.failures = now
	s.mu.Unlock()
	for _, name := range fresh {
		s.vipEvent(ctx, name, corev1.EventTypeWarning, "BindFailed", "Bind", "%s cannot hold the address: %s", s.node, now[name])
	}
}

// idle reports whether the node owns or holds no VIP any more (a handover is done).
func (s *nodeSync) idle(ctx context.Context) bool {
	var list vigilv1.VirtualIPList
	if err := s.client.List(ctx, &list); err != nil {
		return false
	}
	s.mu.Lock()
	holds := len(s.memory.Holds)
	s.mu.Unlock()
	if holds > 0 {
		return false
	}
	for i := range list.Items {
		if list.Items[i].Status.Owner == s.node {
			return false
		}
	}
	return true
}

// watchLinks wakes the sync when a link or an address changes.
func (s *nodeSync) watchLinks(ctx context.Context) error {
	return s.links.Watch(ctx, s.poke)
}

// holding reports whether a make-before-break hold waits for another node's report.
func (s *nodeSync) holding() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.memory.Holds) > 0
}

// vipEvent records an Event on the VirtualIP named vip (read from the cache for its UID, so
// that `kubectl describe vip` shows it).
func (s *nodeSync) vipEvent(ctx context.Context, vip, eventType, reason, action, note string, args ...any) {
	if s.events == nil {
		return
	}
	var v vigilv1.VirtualIP
	if err := s.client.Get(ctx, client.ObjectKey{Name: vip}, &v); err != nil {
		return
	}
	s.events.Eventf(&v, nil, eventType, reason, action, note, args...)
}

// agentEvent records an Event on this node's NodeAgent, or on its Node before the
// NodeAgent exists (a failure at start).
func (s *nodeSync) agentEvent(ctx context.Context, eventType, reason, action, note string, args ...any) {
	if s.events == nil {
		return
	}
	var na vigilv1.NodeAgent
	if err := s.client.Get(ctx, client.ObjectKey{Name: s.node}, &na); err == nil {
		s.events.Eventf(&na, nil, eventType, reason, action, note, args...)
		return
	}
	var node corev1.Node
	if err := s.client.Get(ctx, client.ObjectKey{Name: s.node}, &node); err == nil {
		s.events.Eventf(&node, nil, eventType, reason, action, note, args...)
	}
}

// healthChanged is the probe manager's callback: the node's eligibility for vip changed.
// It wakes the sync, which reports it, and records an Event when the verdict flips, and when a first verdict is a failure; not
// for checks still without a verdict, nor for a first pass (every new VIP would get one
// per node).
func (s *nodeSync) healthChanged(vip string, h probe.Health) {
	s.poke() // report it now
	if h.Unknown {
		return
	}
	// Not s.mu: the probe manager calls this from Set, inside Reconcile.
	s.verdictsMu.Lock()
	prev, known := s.verdicts[vip]
	s.verdicts[vip] = h.Eligible
	s.verdictsMu.Unlock()
	switch {
	case known && prev == h.Eligible, !known && h.Eligible:
		return
	case h.Eligible:
		s.vipEvent(context.Background(), vip, corev1.EventTypeNormal, "HealthChecksPassing", "HealthCheck", "%s: %s", s.node, h.Reason)
	default:
		s.vipEvent(context.Background(), vip, corev1.EventTypeWarning, "HealthCheckFailing", "HealthCheck", "%s: check %s fails: %s", s.node, h.Check, h.Reason)
	}
}
