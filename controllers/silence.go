package controllers

import (
	"time"
)

// EchoHistory is what the node watch knows of one node's answers to its ICMP echo
// requests, on this controller's clock.
type EchoHistory struct {
	// Answered is when the last reply arrived (zero: never).
	Answered time.Time
	// Unanswered are the send times of the requests since that reply, oldest first.
	Unanswered []time.Time
}

// SilentNodes decides which nodes have stopped answering the controller's echo requests,
// and since when. A node's kernel answers echo requests however busy its processes are,
// and stops the instant the node crashes or its link goes: silence is the fastest sign of
// a dead node there is, and is not fooled by a starved agent. It is a pure function:
//
//   - A node that has never answered is never silent: echo requests may be filtered on the
//     way to it, and then this watch knows nothing (memberlist and heartbeats still do).
//   - Only requests sent on schedule count. A gap of more than two intervals between two
//     requests, or since the last one, means this controller did not run (a starved CPU):
//     replies it has not read yet may be waiting, so the count starts over after the gap.
//   - A node is silent once the first of its unanswered requests sent on schedule is
//     deadAfter old; it is silent since that request was sent.
//   - When every node that ever answered is silent, none is: this controller is the one
//     cut off, and the nodes are left to memberlist and heartbeats.
func SilentNodes(nodes map[string]EchoHistory, now time.Time, interval, deadAfter time.Duration) map[string]time.Time {
	silent := map[string]time.Time{}
	answering := 0
	for name, h := range nodes {
		if h.Answered.IsZero() {
			continue
		}
		since, ok := silentSince(h.Unanswered, now, interval, deadAfter)
		if !ok {
			answering++
			continue
		}
		silent[name] = since
	}
	if answering == 0 {
		return map[string]time.Time{}
	}
	return silent
}

// silentSince finds the run of unanswered requests sent on schedule up to now and says
// whether its first request is deadAfter old.
func silentSince(sent []time.Time, now time.Time, interval, deadAfter time.Duration) (time.Time, bool) {
	if len(sent) == 0 || now.Sub(sent[len(sent)-1]) > 2*interval {
		return time.Time{}, false
	}
	start := len(sent) - 1
	for start > 0 && sent[start].Sub(sent[start-1]) <= 2*interval {
		start--
	}
	if now.Sub(sent[start]) < deadAfter {
		return time.Time{}, false
	}
	return sent[start], true
}
