// Package controllers holds Vigil's reconcilers. They are thin: each reads the world,
// calls a pure function that decides, and writes the result in one status patch.
package controllers

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// VirtualIPReconciler elects the owner of every VirtualIP and keeps its status true.
type VirtualIPReconciler struct {
	Client   client.Client
	Clock    clock.PassiveClock
	Recorder events.EventRecorder
	// Members returns memberlist's view of the agents (nil without memberlist).
	Members func() map[string]MemberState
	// HeartbeatTimeout: an agent whose heartbeat is older is dead, unless memberlist says
	// otherwise.
	HeartbeatTimeout time.Duration
	// Wake receives an event whenever liveness may have changed (memberlist, timers): every
	// VirtualIP is then looked at again.
	Wake chan event.GenericEvent
	// Metrics records decisions, moves and failover durations (nil: none).
	Metrics *Metrics

	mu     sync.Mutex
	owners map[string]string // owner decided per VIP, ahead of the cache, for spreading
}

// +kubebuilder:rbac:groups=vigil.dev,resources=virtualips,verbs=get;list;watch
// +kubebuilder:rbac:groups=vigil.dev,resources=virtualips/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=vigil.dev,resources=nodeagents,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// Events about cluster-scoped objects (VirtualIPs) live in the default namespace.
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch,namespace=default

// Reconcile elects the VirtualIP's owner and patches its status when it changed.
func (r *VirtualIPReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var vip vigilv1.VirtualIP
	if err := r.Client.Get(ctx, req.NamespacedName, &vip); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.forget(req.Name)
			r.Metrics.forget(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var agents vigilv1.NodeAgentList
	if err := r.Client.List(ctx, &agents); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing NodeAgents: %w", err)
	}
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing Nodes: %w", err)
	}
	var vips vigilv1.VirtualIPList
	if err := r.Client.List(ctx, &vips); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing VirtualIPs: %w", err)
	}
	now := r.Clock.Now()
	var members map[string]MemberState
	if r.Members != nil {
		members = r.Members()
	}
	candidates := Candidates(vip.Name, agents.Items, nodes.Items, members, now, r.HeartbeatTimeout)
	decision := Elect(ElectionInput{VIP: &vip, Candidates: candidates, Owned: r.ownedCounts(vips.Items, vip.Name), Now: now})
	conflict := OlderWithSameAddress(&vip, vips.Items)
	if conflict != "" {
		decision = Decision{}
	}
	var report *vigilv1.VIPEligibility
	for i := range agents.Items {
		if agents.Items[i].Name == decision.Owner {
			report = findReport(&agents.Items[i], vip.Name)
		}
	}
	desired := computeStatus(&vip, statusInput{Decision: decision, ConflictWith: conflict, OwnerReport: report, Now: metav1.NewTime(now)})
	r.remember(vip.Name, desired.Owner)
	if !equality.Semantic.DeepEqual(vip.Status, desired) {
		patched := vip.DeepCopy()
		patched.Status = desired
		if err := r.Client.Status().Patch(ctx, patched, client.MergeFromWithOptions(&vip, client.MergeFromWithOptimisticLock{})); err != nil {
			r.forget(vip.Name)
			return ctrl.Result{}, fmt.Errorf("patching status of VirtualIP %s: %w", vip.Name, err)
		}
		if desired.Owner != vip.Status.Owner {
			r.announceMove(ctx, patched, vip.Status.Owner, desired, decision, conflict)
		}
		if conflict != "" && !meta.IsStatusConditionTrue(vip.Status.Conditions, vigilv1.ConditionConflict) {
			r.announceConflict(patched, conflict)
		}
	}
	r.Metrics.observeElection(&vip, &vip.Status, &desired, detectedAt(vip.Status.Owner, desired.Owner, members, now))
	r.Metrics.observeBound(&vip, &desired, now)
	return ctrl.Result{RequeueAfter: decision.RequeueAfter}, nil
}

// detectedAt is when this controller learnt that the owner failed: memberlist's death
// notice when it gave one (it may have come a moment before this reconcile ran), else now.
// Both are this process's own clock.
func detectedAt(from, to string, members map[string]MemberState, now time.Time) time.Time {
	if m, ok := members[from]; ok && from != to && !m.Alive && m.Since.Before(now) {
		return m.Since
	}
	return now
}

// announceConflict emits a Warning Event when a VirtualIP starts conflicting with an older
// one (also a new VirtualIP that never had an owner, so no move announces it).
func (r *VirtualIPReconciler) announceConflict(vip *vigilv1.VirtualIP, with string) {
	if r.Recorder == nil {
		return
	}
	r.Recorder.Eventf(vip, nil, corev1.EventTypeWarning, vigilv1.ReasonAddressInUse, "Conflict",
		"%s is already used by VirtualIP %s; this one is not bound until that one is deleted or changed", vip.Spec.Address, with)
}

func (r *VirtualIPReconciler) announceMove(ctx context.Context, vip *vigilv1.VirtualIP, from string, s vigilv1.VirtualIPStatus, d Decision, conflict string) {
	reason, note := s.LastTransition.Reason, fmt.Sprintf("%s -> %s (epoch %d): %s", orNobody(from), orNobody(s.Owner), s.Epoch, d.Message)
	if conflict != "" {
		note = fmt.Sprintf("%s -> nobody: the address belongs to VirtualIP %s", orNobody(from), conflict)
	}
	log.FromContext(ctx).Info("owner changed", "from", from, "to", s.Owner, "epoch", s.Epoch, "reason", reason, "message", d.Message)
	if r.Recorder != nil {
		eventType := corev1.EventTypeNormal
		if s.Owner == "" || d.Degraded {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(vip, nil, eventType, reason, "Move", "%s", note)
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

// Candidates turns the agents' reports into the election's view of each node for vip.
func Candidates(vip string, agents []vigilv1.NodeAgent, nodes []corev1.Node, members map[string]MemberState, now time.Time, timeout time.Duration) []Candidate {
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
		var member *MemberState
		if m, ok := members[a.Name]; ok {
			member = &m
		}
		c := Candidate{
			Node:     a.Name,
			Labels:   node.Labels,
			Alive:    AgentAlive(a.Status.HeartbeatTime.Time, member, now, timeout),
			Draining: a.Status.Draining || node.Spec.Unschedulable,
			Reason:   "the agent has not reported on this VirtualIP yet",
		}
		if rep := findReport(a, vip); rep != nil && !strings.HasSuffix(rep.Reason, vigilv1.NoVerdictYet) {
			c.Reported, c.Eligible, c.Since, c.Reason = true, rep.Eligible, rep.Since.Time, rep.Reason
		}
		out = append(out, c)
	}
	return out
}

func findReport(a *vigilv1.NodeAgent, vip string) *vigilv1.VIPEligibility {
	for i := range a.Status.VIPs {
		if a.Status.VIPs[i].Name == vip {
			return &a.Status.VIPs[i]
		}
	}
	return nil
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

// SetupWithManager registers the reconciler: every VirtualIP is looked at again when an
// agent reports, a node changes, liveness may have changed, or a VirtualIP with the same
// address changes.
func (r *VirtualIPReconciler) SetupWithManager(mgr ctrl.Manager) error {
	all := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		return r.allVIPs(ctx)
	})
	b := ctrl.NewControllerManagedBy(mgr).
		For(&vigilv1.VirtualIP{}).
		Named("virtualip").
		Watches(&vigilv1.VirtualIP{}, handler.EnqueueRequestsFromMapFunc(r.sameAddress)).
		Watches(&vigilv1.NodeAgent{}, all).
		Watches(&corev1.Node{}, all)
	if r.Wake != nil {
		b = b.WatchesRawSource(source.Channel(r.Wake, all))
	}
	return b.Complete(r)
}

func (r *VirtualIPReconciler) allVIPs(ctx context.Context) []reconcile.Request {
	var vips vigilv1.VirtualIPList
	if err := r.Client.List(ctx, &vips); err != nil {
		log.FromContext(ctx).Error(err, "listing VirtualIPs")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(vips.Items))
	for i := range vips.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Name: vips.Items[i].Name}})
	}
	return reqs
}

func (r *VirtualIPReconciler) sameAddress(ctx context.Context, obj client.Object) []reconcile.Request {
	changed, ok := obj.(*vigilv1.VirtualIP)
	if !ok {
		return nil
	}
	var vips vigilv1.VirtualIPList
	if err := r.Client.List(ctx, &vips); err != nil {
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
