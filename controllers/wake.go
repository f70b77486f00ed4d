package controllers

import (
	"context"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/chans"
	"vigil.dev/vigil/internal/membership"
)

// +kubebuilder:rbac:groups=vigil.dev,resources=nodeagents,verbs=delete

// orphanGrace is how long a NodeAgent may exist without its Node before the controller
// deletes it (the garbage collector does it first where it runs; this covers NodeAgents
// made before they were owned by their Node).
const orphanGrace = time.Minute

// livenessWatcher wakes the VirtualIP reconciler when an agent's liveness changes without
// any object changing: a heartbeat that stops changing (the agent died, memberlist is not
// there to say so). memberlist's own events wake it directly. It also removes the
// NodeAgents of Nodes that are gone, so that they stop counting anywhere.
type livenessWatcher struct {
	Client   client.Client
	Clock    clock.PassiveClock
	Observer *Observer
	Members  func() map[string]membership.State
	Timeout  time.Duration
	Every    time.Duration
	Wake     chan<- event.GenericEvent
	// metrics exports the agents' liveness (nil: not exported).
	metrics *metrics

	orphanSince map[string]time.Time // NodeAgent -> first seen without its Node
}

// NeedLeaderElection: only the leader elects.
func (w *livenessWatcher) NeedLeaderElection() bool { return true }

// Start checks liveness every w.Every until ctx is done.
func (w *livenessWatcher) Start(ctx context.Context) error {
	t := time.NewTicker(w.Every)
	defer t.Stop()
	var last map[string]bool
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var agents vigilv1.NodeAgentList
		if err := w.Client.List(ctx, &agents); err != nil {
			log.FromContext(ctx).Error(err, "listing NodeAgents")
			continue
		}
		alive := w.alive(agents.Items)
		if last != nil && !maps.Equal(alive, last) {
			w.Poke()
		}
		last = alive
		w.metrics.setAlive(alive)
		w.removeOrphans(ctx, agents.Items)
	}
}

// alive is every agent's liveness now.
func (w *livenessWatcher) alive(agents []vigilv1.NodeAgent) map[string]bool {
	var members map[string]membership.State
	if w.Members != nil {
		members = w.Members()
	}
	now := w.Clock.Now()
	seen := w.Observer.Heartbeats(agents, now)
	alive := map[string]bool{}
	for i := range agents {
		a := &agents[i]
		var m *membership.State
		if s, ok := members[a.Name]; ok {
			m = &s
		}
		alive[a.Name] = AgentAlive(seen[a.Name], m, now, w.Timeout)
	}
	return alive
}

// removeOrphans deletes the NodeAgents whose Node this controller has seen missing for
// orphanGrace (on its own clock: a creation time is the API server's).
func (w *livenessWatcher) removeOrphans(ctx context.Context, agents []vigilv1.NodeAgent) {
	now := w.Clock.Now()
	if w.orphanSince == nil {
		w.orphanSince = map[string]time.Time{}
	}
	missing := map[string]bool{}
	for i := range agents {
		a := &agents[i]
		if err := w.Client.Get(ctx, client.ObjectKey{Name: a.Name}, &corev1.Node{}); !apierrors.IsNotFound(err) {
			continue
		}
		missing[a.Name] = true
		since, ok := w.orphanSince[a.Name]
		if !ok {
			w.orphanSince[a.Name] = now
			continue
		}
		if now.Sub(since) < orphanGrace {
			continue
		}
		if err := w.Client.Delete(ctx, a); client.IgnoreNotFound(err) != nil {
			log.FromContext(ctx).Error(err, "deleting the NodeAgent of a Node that is gone", "node", a.Name)
			continue
		}
		log.FromContext(ctx).Info("deleted the NodeAgent of a Node that is gone", "node", a.Name)
	}
	maps.DeleteFunc(w.orphanSince, func(name string, _ time.Time) bool { return !missing[name] })
}

// Poke wakes the reconciler without blocking.
func (w *livenessWatcher) Poke() {
	chans.TrySend(w.Wake, event.GenericEvent{Object: &vigilv1.NodeAgent{}})
}
