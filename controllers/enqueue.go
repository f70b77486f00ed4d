package controllers

import (
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
)

// urgentPriority is the work queue priority of a VirtualIP whose owner has just been found
// dead: its clients are waiting, where the other VirtualIPs a death wakes only have a
// standby list to rewrite.
const urgentPriority = 1

// ReportChanges says which VirtualIPs a NodeAgent's update can change the election of: the
// ones whose report changed (added, removed, or any field different), or every one when
// something else the election reads changed (draining, memberlist address, gateways, and
// whether VIPs left out are settled: see NodeAgentStatus.Report). A
// heartbeat alone changes none: when a heartbeat makes an agent alive or dead, the
// liveness watcher wakes every VirtualIP. Before this, every NodeAgent write — each
// agent's heartbeat every 10 s, and each report while hundreds of VirtualIPs were being
// created — reconciled every VirtualIP. Pure.
func ReportChanges(old, updated *vigilv1.NodeAgentStatus) (names []string, all bool) {
	if old.Draining != updated.Draining || old.MemberlistAddress != updated.MemberlistAddress ||
		!slices.Equal(old.Gateways, updated.Gateways) || !equality.Semantic.DeepEqual(old.OmitSettledAfter, updated.OmitSettledAfter) {
		return nil, true
	}
	before := map[string]*vigilv1.VIPEligibility{}
	for i := range old.VIPs {
		before[old.VIPs[i].Name] = &old.VIPs[i]
	}
	for i := range updated.VIPs {
		r := &updated.VIPs[i]
		if prev, ok := before[r.Name]; !ok || !equality.Semantic.DeepEqual(*prev, *r) {
			names = append(names, r.Name)
		}
		delete(before, r.Name)
	}
	for name := range before {
		names = append(names, name)
	}
	slices.Sort(names)
	return slices.Compact(names), false
}

// OwnerLost says whether a VirtualIP's owner is one memberlist (or the node watch) reports
// dead: the VirtualIPs a death must re-elect first. Pure.
func OwnerLost(vip *vigilv1.VirtualIP, members map[string]membership.State) bool {
	s, ok := members[vip.Status.Owner]
	return vip.Status.Owner != "" && ok && !s.Alive
}

// NodeElectionChanged says whether a Node's update changes anything an election reads: its
// labels (nodeSelector), whether it is cordoned, its addresses (reserved addresses), or its
// deletion. A Node's status heartbeats change none. Pure.
func NodeElectionChanged(old, updated *corev1.Node) bool {
	return !equality.Semantic.DeepEqual(old.Labels, updated.Labels) ||
		old.Spec.Unschedulable != updated.Spec.Unschedulable ||
		!equality.Semantic.DeepEqual(old.Status.Addresses, updated.Status.Addresses) ||
		(old.DeletionTimestamp == nil) != (updated.DeletionTimestamp == nil)
}

type requestQueue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// updates enqueues every VirtualIP when an object comes or goes, and on an update the
// VirtualIPs affected says (all: every one).
func (r *VirtualIPReconciler) updates(affected func(e event.UpdateEvent) (names []string, all bool)) handler.Funcs {
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, _ event.CreateEvent, q requestQueue) { r.enqueueAll(ctx, q) },
		DeleteFunc: func(ctx context.Context, _ event.DeleteEvent, q requestQueue) { r.enqueueAll(ctx, q) },
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q requestQueue) {
			names, all := affected(e)
			if all {
				r.enqueueAll(ctx, q)
				return
			}
			for _, name := range names {
				q.Add(reconcile.Request{NamespacedName: client.ObjectKey{Name: name}})
			}
		},
	}
}

// agentEvents enqueues what a NodeAgent's change can affect (ReportChanges).
func (r *VirtualIPReconciler) agentEvents() handler.Funcs {
	return r.updates(func(e event.UpdateEvent) ([]string, bool) {
		old, okOld := e.ObjectOld.(*vigilv1.NodeAgent)
		updated, okNew := e.ObjectNew.(*vigilv1.NodeAgent)
		if !okOld || !okNew {
			return nil, true
		}
		return ReportChanges(&old.Status, &updated.Status)
	})
}

// nodeEvents enqueues every VirtualIP when a Node changes in a way an election reads
// (NodeElectionChanged).
func (r *VirtualIPReconciler) nodeEvents() handler.Funcs {
	return r.updates(func(e event.UpdateEvent) ([]string, bool) {
		old, okOld := e.ObjectOld.(*corev1.Node)
		updated, okNew := e.ObjectNew.(*corev1.Node)
		return nil, !okOld || !okNew || NodeElectionChanged(old, updated)
	})
}

// allEvents enqueues every VirtualIP on any event: liveness may have changed (the wake
// channel), or the API server's addresses did. Those whose owner is dead go ahead of the
// others (OwnerLost): a crashed node's VIPs must not wait behind the rewrite of other
// VIPs' standby lists.
func (r *VirtualIPReconciler) allEvents() handler.Funcs {
	all := func(ctx context.Context, q requestQueue) { r.enqueueAll(ctx, q) }
	return handler.Funcs{
		CreateFunc:  func(ctx context.Context, _ event.CreateEvent, q requestQueue) { all(ctx, q) },
		UpdateFunc:  func(ctx context.Context, _ event.UpdateEvent, q requestQueue) { all(ctx, q) },
		DeleteFunc:  func(ctx context.Context, _ event.DeleteEvent, q requestQueue) { all(ctx, q) },
		GenericFunc: func(ctx context.Context, _ event.GenericEvent, q requestQueue) { all(ctx, q) },
	}
}

// enqueueAll adds every VirtualIP to the queue, those whose owner is lost first and, where
// the queue has priorities, ahead of what is already waiting.
func (r *VirtualIPReconciler) enqueueAll(ctx context.Context, q requestQueue) {
	var vips vigilv1.VirtualIPList
	if err := r.Client.List(ctx, &vips, client.UnsafeDisableDeepCopy); err != nil {
		log.FromContext(ctx).Error(err, "listing VirtualIPs")
		return
	}
	var members map[string]membership.State
	if r.Members != nil {
		members = r.Members()
	}
	var urgent, rest []reconcile.Request
	for i := range vips.Items {
		req := reconcile.Request{NamespacedName: client.ObjectKey{Name: vips.Items[i].Name}}
		if OwnerLost(&vips.Items[i], members) {
			urgent = append(urgent, req)
		} else {
			rest = append(rest, req)
		}
	}
	if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok && len(urgent) > 0 {
		pq.AddWithOpts(priorityqueue.AddOpts{Priority: new(urgentPriority)}, urgent...)
	} else {
		for _, req := range urgent {
			q.Add(req)
		}
	}
	for _, req := range rest {
		if len(urgent) > 0 {
			q.AddAfter(req, standbyRewriteDelay)
		} else {
			q.Add(req)
		}
	}
}

// standbyRewriteDelay is how long the VirtualIPs a death does not take the owner of wait
// while those it does are re-elected. A node that dies is a standby of most VIPs: their
// status patches (a standby list rewritten) went to the API server, and woke every agent,
// in the same instant as the new owners' — in the lab, a crashed node's 20–25 VIPs
// answered elsewhere after p99 539 ms, beside about 80 such rewrites per crash. A standby
// list stale for a second still names the dead node, which the agents see dead in
// memberlist as well.
const standbyRewriteDelay = time.Second
