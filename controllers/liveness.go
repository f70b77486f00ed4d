package controllers

import "time"

// MemberState is what memberlist says of a node's agent.
type MemberState struct {
	Alive bool
	Since time.Time // when memberlist last changed its mind
}

// AgentAlive decides whether a node's agent is alive. memberlist, when it knows the node,
// is first-hand and fast: alive is alive, even if the agent cannot reach the API server
// (an API outage must not move VIPs), and dead is dead unless the agent has written a
// heartbeat since (it came back, and memberlist has not caught up). Without memberlist the
// heartbeat decides: fresher than timeout is alive.
func AgentAlive(heartbeat time.Time, member *MemberState, now time.Time, timeout time.Duration) bool {
	if member != nil {
		if member.Alive {
			return true
		}
		if !heartbeat.After(member.Since) {
			return false
		}
	}
	return now.Sub(heartbeat) < timeout
}
