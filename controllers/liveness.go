package controllers

import (
	"fmt"
	"sync"
	"time"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
)

// heartbeatAfterDeath is how long after a death notice a heartbeat must be seen to
// count as a sign of life. The controller dates a heartbeat when it sees it change (the
// liveness watcher looks every livenessCheckEvery), so a heartbeat written just before a
// crash can be seen just after the node fell silent: in the lab, a heartbeat written 80 ms
// before node-a's first unanswered echo request was dated after it, and node-a's 20 VIPs
// stayed on the dead node for 5.3 s. An agent really alive writes again within its
// heartbeat interval, and memberlist says alive again sooner.
const heartbeatAfterDeath = 2 * livenessCheckEvery

// AgentAlive decides whether a node's agent is alive. Every time it compares is this
// controller's own: heartbeatSeen is when the controller saw the agent's heartbeat change
// (not the time the agent wrote, which comes from another machine's clock).
// memberlist, when it knows the node, is first-hand and fast: alive is alive, even if the
// agent cannot reach the API server (an API outage must not move VIPs), and dead is dead
// unless a heartbeat was seen more than heartbeatAfterDeath after the death (it came back,
// and memberlist has not caught up). Without memberlist the heartbeat decides: seen
// changing within timeout is alive.
func AgentAlive(heartbeatSeen time.Time, member *membership.State, now time.Time, timeout time.Duration) bool {
	if member != nil {
		if member.Alive {
			return true
		}
		if !heartbeatSeen.After(member.Since.Add(heartbeatAfterDeath)) {
			return false
		}
	}
	return now.Sub(heartbeatSeen) < timeout
}

// Observer remembers, on the controller's own clock, when it saw each agent's heartbeat
// change and each node's eligibility for each VirtualIP change. Liveness and preemption
// delays are measured with these, so that no decision compares times written by two
// machines (a node whose clock runs ahead would otherwise look alive, or eligible for
// longer, than it is). A new leader starts with what it sees first: every agent counts as
// just heard from, every eligibility as just changed (a running preemption delay starts
// over).
type Observer struct {
	mu          sync.Mutex
	heartbeats  map[string]seenValue // NodeAgent -> heartbeat value, when it changed
	eligibility map[[2]string]seenValue
}

type seenValue struct {
	value string
	at    time.Time
}

// observe returns when value last changed under key, recording it now if it did.
func observe[K comparable](m map[K]seenValue, key K, value string, now time.Time) time.Time {
	if s, ok := m[key]; ok && s.value == value {
		return s.at
	}
	m[key] = seenValue{value: value, at: now}
	return now
}

// Heartbeats records the agents' heartbeats and returns, per agent, when this controller
// saw its heartbeat change. Agents no longer listed are forgotten.
func (o *Observer) Heartbeats(agents []vigilv1.NodeAgent, now time.Time) map[string]time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.heartbeats == nil {
		o.heartbeats = map[string]seenValue{}
	}
	out := make(map[string]time.Time, len(agents))
	for i := range agents {
		a := &agents[i]
		out[a.Name] = observe(o.heartbeats, a.Name, a.Status.HeartbeatTime.UTC().String(), now)
	}
	for name := range o.heartbeats {
		if _, ok := out[name]; !ok {
			delete(o.heartbeats, name)
		}
	}
	return out
}

// EligibleSince records each agent's eligibility for vip and returns, per node, since when
// this controller has seen it unchanged.
func (o *Observer) EligibleSince(vip *vigilv1.VirtualIP, agents []vigilv1.NodeAgent, now time.Time) map[string]time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.eligibility == nil {
		o.eligibility = map[[2]string]seenValue{}
	}
	out := map[string]time.Time{}
	for i := range agents {
		if rep := agents[i].Status.Report(vip, now); rep != nil {
			// The UID is part of the value: a VirtualIP created again under its name starts
			// afresh.
			value := fmt.Sprintf("%s/%t", vip.UID, rep.Eligible)
			out[agents[i].Name] = observe(o.eligibility, [2]string{vip.Name, agents[i].Name}, value, now)
		}
	}
	return out
}

// ForgetVIP drops what was seen of a deleted VirtualIP.
func (o *Observer) ForgetVIP(vip string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := range o.eligibility {
		if k[0] == vip {
			delete(o.eligibility, k)
		}
	}
}
