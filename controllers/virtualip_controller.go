// Package controllers holds Vigil's reconcilers. They are thin: each reads the world,
// calls a pure function that decides, and writes the result in one status patch.
package controllers

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
)

// VirtualIPReconciler elects the owner of every VirtualIP and keeps its status true.
type VirtualIPReconciler struct {
	Client   client.Client
	Clock    clock.PassiveClock
	Recorder events.EventRecorder
	// Members returns memberlist's view of the agents (nil without memberlist).
	Members func() map[string]membership.State
	// HeartbeatTimeout: an agent whose heartbeat is older is dead, unless memberlist says
	// otherwise.
	HeartbeatTimeout time.Duration
	// Wake receives an event whenever liveness may have changed (memberlist, timers): every
	// VirtualIP is then looked at again.
	Wake chan event.GenericEvent
	// metrics records decisions, moves and failover durations (nil: none).
	metrics *metrics
	// Observer dates what the controller sees change, on its own clock.
	Observer *Observer

	mu     sync.Mutex
	owners map[string]string // owner decided per VIP, ahead of the cache, for spreading
	// decideMu makes elections one at a time (decideAndRemember).
	decideMu sync.Mutex
}

// reconcileWorkers is how many VirtualIPs are reconciled at once. The work of a reconcile
// is a status patch's round trip to the API server; with one worker, 300 VirtualIPs
// created together were elected one round trip after another (16 a second, 19 s for all),
// and a crashed node's VIPs waited behind the rewrites of other VIPs' standby lists.
// With 8, a crashed node's 20–25 VIPs were re-elected in waves of 8 over 300 ms after
// its death was seen; with 32 they are patched side by side (all within 111 ms in the
// logs of one `bench-scale --runs 100x5` run). Elections themselves stay one at a time
// (decideAndRemember).
const reconcileWorkers = 32

// +kubebuilder:rbac:groups=vigil.dev,resources=virtualips,verbs=get;list;watch
// +kubebuilder:rbac:groups=vigil.dev,resources=virtualips/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=vigil.dev,resources=nodeagents,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// Events about cluster-scoped objects (VirtualIPs) live in the default namespace.
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch,namespace=default
// The API server's addresses: the kubernetes Service's EndpointSlices, in default only
// (the cache watches nothing else, see CacheOptions).
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch,namespace=default

// maxEventNoteLength is the most an Event's note may hold (events.k8s.io/v1 rejects more).
const maxEventNoteLength = 1024

// cluster is what one reconcile reads from the cache besides the VirtualIP itself.
type cluster struct {
	agents    []vigilv1.NodeAgent
	nodes     []corev1.Node
	vips      []vigilv1.VirtualIP
	apiServer []discoveryv1.EndpointSlice // the kubernetes Service's EndpointSlices
}

// Reconcile elects the VirtualIP's owner and patches its status when it changed.
func (r *VirtualIPReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var vip vigilv1.VirtualIP
	if err := r.Client.Get(ctx, req.NamespacedName, &vip); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.forget(req.Name)
			r.metrics.forget(req.Name)
			r.Observer.ForgetVIP(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	world, err := r.read(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	now := r.Clock.Now()
	var members map[string]membership.State
	if r.Members != nil {
		members = r.Members()
	}
	in, desired := r.decideAndRemember(&vip, world, members, now)
	if !equality.Semantic.DeepEqual(vip.Status, desired) {
		patched := vip.DeepCopy()
		patched.Status = desired
		if err := r.Client.Status().Patch(ctx, patched, client.MergeFromWithOptions(&vip, client.MergeFromWithOptimisticLock{})); err != nil {
			r.forget(vip.Name)
			return ctrl.Result{}, fmt.Errorf("patching status of VirtualIP %s: %w", vip.Name, err)
		}
		if desired.Owner != vip.Status.Owner {
			r.announceMove(ctx, patched, vip.Status.Owner, desired, in)
		}
		r.announceConflict(ctx, patched, vip.Status.Conditions, in)
	}
	r.metrics.observeElection(&vip, &vip.Status, &desired, detectedAt(vip.Status.Owner, desired.Owner, members, now))
	r.metrics.observeBound(&vip, &desired, now)
	return ctrl.Result{RequeueAfter: in.Decision.RequeueAfter}, nil
}

// decideAndRemember elects and computes the status, and records the owner for the
// elections that follow, while no other worker decides: reconciles run side by side
// (reconcileWorkers) so that their status patches overlap, but each election must count
// the owners the ones before it chose, or VIPs created together would all go to the same
// least-loaded node.
func (r *VirtualIPReconciler) decideAndRemember(vip *vigilv1.VirtualIP, world *cluster, members map[string]membership.State, now time.Time) (statusInput, vigilv1.VirtualIPStatus) {
	r.decideMu.Lock()
	defer r.decideMu.Unlock()
	in := r.decide(vip, world, members, now)
	desired := computeStatus(vip, in)
	r.remember(vip.Name, desired.Owner)
	return in, desired
}

// read lists what the decision depends on, from the cache.
func (r *VirtualIPReconciler) read(ctx context.Context) (*cluster, error) {
	// The lists are the cache's own objects, not copies (UnsafeDisableDeepCopy), and are
	// only read: every NodeAgent reports on every VIP, so a copy per reconcile was
	// agents × VIPs reports — 50,000 for 1000 VIPs on 50 nodes, for each of the 1000.
	var agents vigilv1.NodeAgentList
	if err := r.Client.List(ctx, &agents, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing NodeAgents: %w", err)
	}
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing Nodes: %w", err)
	}
	var vips vigilv1.VirtualIPList
	if err := r.Client.List(ctx, &vips, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing VirtualIPs: %w", err)
	}
	var slices discoveryv1.EndpointSliceList
	if err := r.Client.List(ctx, &slices, client.InNamespace(apiServerNamespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: apiServerService}); err != nil {
		return nil, fmt.Errorf("listing the EndpointSlices of the %s Service: %w", apiServerService, err)
	}
	return &cluster{agents: agents.Items, nodes: nodes.Items, vips: vips.Items, apiServer: slices.Items}, nil
}

// decide computes what the status is made of: the election, unless the address belongs
// to something else in the cluster or to an older VirtualIP, and the owner's report.
func (r *VirtualIPReconciler) decide(vip *vigilv1.VirtualIP, c *cluster, members map[string]membership.State, now time.Time) statusInput {
	in := statusInput{
		ReservedBy:   ReservedBy(vip.Spec.Address, c.nodes, c.apiServer, c.agents),
		ConflictWith: OlderWithSameAddress(vip, c.vips),
		Now:          metav1.NewTime(now),
	}
	if in.ReservedBy != "" || in.ConflictWith != "" {
		return in // never elected: computeStatus takes the address away from any owner
	}
	seen := Seen{Heartbeats: r.Observer.Heartbeats(c.agents, now), EligibleSince: r.Observer.EligibleSince(vip, c.agents, now)}
	candidates := Candidates(vip, c.agents, c.nodes, members, seen, now, r.HeartbeatTimeout)
	in.Decision = Elect(ElectionInput{VIP: vip, Candidates: candidates, Owned: r.ownedCounts(c.vips, vip.Name), Now: now})
	for i := range c.agents {
		if c.agents[i].Name == in.Decision.Owner {
			in.OwnerReport = c.agents[i].Status.Report(vip, now)
		}
	}
	return in
}

// detectedAt is when this controller learnt that the owner failed: memberlist's death
// notice when it gave one (it may have come a moment before this reconcile ran), else now.
// Both are this process's own clock.
func detectedAt(from, to string, members map[string]membership.State, now time.Time) time.Time {
	if m, ok := members[from]; ok && from != to && !m.Alive && m.Since.Before(now) {
		return m.Since
	}
	return now
}

// announceConflict emits a Warning Event when a VirtualIP starts conflicting (or conflicts
// for another reason than before): with an older VirtualIP, or with something else that
// owns the address. Also for a new VirtualIP that never had an owner, which no move
// announces.
func (r *VirtualIPReconciler) announceConflict(ctx context.Context, vip *vigilv1.VirtualIP, before []metav1.Condition, in statusInput) {
	now := meta.FindStatusCondition(vip.Status.Conditions, vigilv1.ConditionConflict)
	if now == nil || now.Status != metav1.ConditionTrue {
		return
	}
	if was := meta.FindStatusCondition(before, vigilv1.ConditionConflict); was != nil && was.Status == metav1.ConditionTrue && was.Reason == now.Reason {
		return
	}
	var note string
	switch now.Reason {
	case vigilv1.ReasonAddressReserved:
		note = fmt.Sprintf("%s; this VirtualIP is not bound while it is", in.ReservedBy)
		log.FromContext(ctx).Info("address reserved", "address", vip.Spec.Address, "reservedBy", in.ReservedBy)
	default:
		note = fmt.Sprintf("%s is already used by VirtualIP %s; this one is not bound until that one is deleted or changed", vip.Spec.Address, in.ConflictWith)
	}
	if r.Recorder != nil {
		r.Recorder.Eventf(vip, nil, corev1.EventTypeWarning, now.Reason, "Conflict", "%s", vigilv1.Truncate(note, maxEventNoteLength))
	}
}

func (r *VirtualIPReconciler) announceMove(ctx context.Context, vip *vigilv1.VirtualIP, from string, s vigilv1.VirtualIPStatus, in statusInput) {
	d := in.Decision
	reason, note := s.LastTransition.Reason, fmt.Sprintf("%s -> %s (epoch %d): %s", orNobody(from), orNobody(s.Owner), s.Epoch, d.Message)
	switch {
	case in.ReservedBy != "":
		note = fmt.Sprintf("%s -> nobody: %s", orNobody(from), in.ReservedBy)
	case in.ConflictWith != "":
		note = fmt.Sprintf("%s -> nobody: the address belongs to VirtualIP %s", orNobody(from), in.ConflictWith)
	}
	log.FromContext(ctx).Info("owner changed", "from", from, "to", s.Owner, "epoch", s.Epoch, "reason", reason, "message", d.Message)
	if r.Recorder != nil {
		eventType := corev1.EventTypeNormal
		if s.Owner == "" || d.Degraded {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(vip, nil, eventType, reason, "Move", "%s", vigilv1.Truncate(note, maxEventNoteLength))
	}
}

func orNobody(n string) string {
	if n == "" {
		return "nobody"
	}
	return n
}

func (r *VirtualIPReconciler) remember(vip, owner string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.owners == nil {
		r.owners = map[string]string{}
	}
	r.owners[vip] = owner
}

func (r *VirtualIPReconciler) forget(vip string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.owners, vip)
}

// ownedCounts counts the VIPs each node holds, not counting vip: decisions made in this
// process win over the cache, which may not have caught up with them yet.
func (r *VirtualIPReconciler) ownedCounts(vips []vigilv1.VirtualIP, vip string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	counts := map[string]int{}
	for i := range vips {
		name := vips[i].Name
		if name == vip {
			continue
		}
		owner, ok := r.owners[name]
		if !ok {
			owner = vips[i].Status.Owner
		}
		if owner != "" {
			counts[owner]++
		}
	}
	return counts
}

// Seen is what this controller has seen change, on its own clock (see Observer): when
// each agent's heartbeat last changed, and since when each node's eligibility for the VIP
// has been what it is.
type Seen struct {
	Heartbeats    map[string]time.Time
	EligibleSince map[string]time.Time
}

// Candidates turns the agents' reports into the election's view of each node for vip.
func Candidates(vip *vigilv1.VirtualIP, agents []vigilv1.NodeAgent, nodes []corev1.Node, members map[string]membership.State, seen Seen, now time.Time, timeout time.Duration) []Candidate {
	byName := map[string]*corev1.Node{}
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
	}
	var out []Candidate
	for i := range agents {
		a := &agents[i]
		node, ok := byName[a.Name]
		if !ok {
			continue // an agent whose Node is gone
		}
		var member *membership.State
		if m, ok := members[a.Name]; ok {
			member = &m
		}
		c := Candidate{
			Node:     a.Name,
			Labels:   node.Labels,
			Alive:    AgentAlive(seen.Heartbeats[a.Name], member, now, timeout),
			Draining: a.Status.Draining || node.Spec.Unschedulable,
			Reason:   "the agent has not reported on this VirtualIP yet",
		}
		if rep := a.Status.Report(vip, now); rep != nil && !rep.Pending {
			c.Reported, c.Eligible, c.Since, c.Reason = true, rep.Eligible, seen.EligibleSince[a.Name], rep.Reason
			c.BoundEpoch = rep.BoundEpoch
		}
		out = append(out, c)
	}
	return out
}

// OlderWithSameAddress names the oldest other VirtualIP with vip's address, if it is older
// than vip (creation time, then name): that one keeps the address.
func OlderWithSameAddress(vip *vigilv1.VirtualIP, all []vigilv1.VirtualIP) string {
	addr, err := netip.ParseAddr(vip.Spec.Address)
	if err != nil {
		return ""
	}
	older := func(a, b *vigilv1.VirtualIP) bool {
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	}
	var oldest *vigilv1.VirtualIP
	for i := range all {
		o := &all[i]
		if o.Name == vip.Name || o.DeletionTimestamp != nil {
			continue
		}
		if other, err := netip.ParseAddr(o.Spec.Address); err != nil || other != addr {
			continue
		}
		if older(o, vip) && (oldest == nil || older(o, oldest)) {
			oldest = o
		}
	}
	if oldest == nil {
		return ""
	}
	return oldest.Name
}

// SetupWithManager registers the reconciler. A VirtualIP is looked at again when it
// changes, when an agent's report on it changes, or when a VirtualIP with the same address
// changes; every VirtualIP when liveness may have changed (a dead owner's first), a node
// changes what an election reads of it, or the API server's endpoints change (enqueue.go).
func (r *VirtualIPReconciler) SetupWithManager(mgr ctrl.Manager) error {
	// sameAddress looks VirtualIPs up by address: a list of all of them per event was a
	// fifth of the controller's CPU while 1000 VirtualIPs were being created.
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &vigilv1.VirtualIP{}, addressIndex, func(o client.Object) []string {
		v, ok := o.(*vigilv1.VirtualIP)
		if !ok {
			return nil
		}
		return []string{v.Spec.Address}
	}); err != nil {
		return fmt.Errorf("indexing VirtualIPs by address: %w", err)
	}
	apiServerOnly := predicate.NewPredicateFuncs(func(o client.Object) bool {
		s, ok := o.(*discoveryv1.EndpointSlice)
		return ok && isAPIServerSlice(s)
	})
	b := ctrl.NewControllerManagedBy(mgr).
		For(&vigilv1.VirtualIP{}).
		Named("virtualip").
		WithOptions(controller.Options{MaxConcurrentReconciles: reconcileWorkers}).
		Watches(&vigilv1.VirtualIP{}, handler.EnqueueRequestsFromMapFunc(r.sameAddress)).
		Watches(&vigilv1.NodeAgent{}, r.agentEvents()).
		Watches(&corev1.Node{}, r.nodeEvents()).
		Watches(&discoveryv1.EndpointSlice{}, r.allEvents(), builder.WithPredicates(apiServerOnly))
	if r.Wake != nil {
		b = b.WatchesRawSource(source.Channel(r.Wake, r.allEvents()))
	}
	return b.Complete(r)
}

// CacheOptions limit the manager's cache to what the controller may read: of all
// EndpointSlices, only the kubernetes Service's (in default, as its RBAC allows).
func CacheOptions() cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&discoveryv1.EndpointSlice{}: {
			Namespaces: map[string]cache.Config{apiServerNamespace: {}},
			Label:      labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: apiServerService}),
		},
	}}
}

// addressIndex indexes VirtualIPs by spec.address in the controller's cache.
const addressIndex = "spec.address"

// sameAddress enqueues the other VirtualIPs with the changed one's address: which of them
// keeps it (OlderWithSameAddress) may have changed.
func (r *VirtualIPReconciler) sameAddress(ctx context.Context, obj client.Object) []reconcile.Request {
	changed, ok := obj.(*vigilv1.VirtualIP)
	if !ok {
		return nil
	}
	var vips vigilv1.VirtualIPList
	if err := r.Client.List(ctx, &vips, client.MatchingFields{addressIndex: changed.Spec.Address}, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range vips.Items {
		if v := &vips.Items[i]; v.Name != changed.Name && v.Spec.Address == changed.Spec.Address {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Name: v.Name}})
		}
	}
	return reqs
}
