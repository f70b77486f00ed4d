package controllers

import (
	"context"
	"maps"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// LivenessWatcher wakes the VirtualIP reconciler when an agent's liveness changes without
// any object changing: a heartbeat that grows stale (the agent died, memberlist is not
// there to say so). memberlist's own events wake it directly.
type LivenessWatcher struct {
	Client  client.Client
	Clock   clock.PassiveClock
	Members func() map[string]MemberState
	Timeout time.Duration
	Every   time.Duration
	Wake    chan<- event.GenericEvent
	// Metrics exports the agents' liveness (nil: not exported).
	Metrics *Metrics
}

// NeedLeaderElection: only the leader elects.
func (w *LivenessWatcher) NeedLeaderElection() bool { return true }

// Start checks liveness every w.Every until ctx is done.
func (w *LivenessWatcher) Start(ctx context.Context) error {
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
		var members map[string]MemberState
		if w.Members != nil {
			members = w.Members()
		}
		now := w.Clock.Now()
		alive := map[string]bool{}
		for i := range agents.Items {
			a := &agents.Items[i]
			var m *MemberState
			if s, ok := members[a.Name]; ok {
				m = &s
			}
			alive[a.Name] = AgentAlive(a.Status.HeartbeatTime.Time, m, now, w.Timeout)
		}
		if last != nil && !maps.Equal(alive, last) {
			w.Poke()
		}
		last = alive
		w.Metrics.setAlive(alive)
	}
}

// Poke wakes the reconciler without blocking.
func (w *LivenessWatcher) Poke() {
	select {
	case w.Wake <- event.GenericEvent{Object: &vigilv1.NodeAgent{}}:
	default: // a wake-up is already pending
	}
}
