package agent

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
)

func TestMajority(t *testing.T) {
	peer := func(name string, gossips bool) vigilv1.NodeAgent {
		a := vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if gossips {
			a.Status.MemberlistAddress = name + ":7952"
		}
		return a
	}
	abc := []vigilv1.NodeAgent{peer("a", true), peer("b", true), peer("c", true)}
	alive := membership.State{Alive: true}
	dead := func(ago time.Duration) membership.State { return membership.State{Alive: false, Since: t0.Add(-ago)} }
	cases := []struct {
		name       string
		agents     []vigilv1.NodeAgent
		members    map[string]membership.State
		reachable  map[string]bool
		heartbeats map[string]heartbeatSeen
		want       bool
	}{
		{"all three reach each other", abc, map[string]membership.State{"b": alive, "c": alive}, set("a", "b", "c"), nil, true},
		{"one peer lost of three: still a majority", abc, map[string]membership.State{"b": alive, "c": alive}, set("a", "b"), nil, true},
		{"cut off from both: no majority", abc, map[string]membership.State{"b": alive, "c": alive}, set("a"), nil, false},
		{"peers only suspected count as not reached", abc, map[string]membership.State{"b": alive, "c": alive}, set("a"), nil, false},
		{"peers dead a minute ago still count: a cut-off node is no majority of one", abc,
			map[string]membership.State{"b": dead(time.Minute), "c": dead(time.Minute)}, set("a"), nil, false},
		{"NodeAgents of nodes gone for good stop counting", append(abc, peer("d", true), peer("e", true)),
			map[string]membership.State{"b": alive, "c": alive, "d": dead(time.Hour), "e": dead(time.Hour)}, set("a", "b", "c"), nil, true},
		{"never seen by memberlist, no heartbeat seen for long: not counted", append(abc, peer("d", true)),
			map[string]membership.State{"b": alive, "c": alive}, set("a", "b"),
			map[string]heartbeatSeen{"d": {at: t0.Add(-time.Hour)}}, true},
		{"never seen by memberlist, but beating: counted", append(abc, peer("d", true)),
			map[string]membership.State{"b": alive, "c": alive}, set("a", "b"),
			map[string]heartbeatSeen{"d": {at: t0.Add(-time.Second)}}, false},
		{"peers without memberlist cannot be seen either way: not counted", []vigilv1.NodeAgent{peer("a", true), peer("b", false), peer("c", false)},
			map[string]membership.State{}, set("a"), nil, true},
		{"no memberlist here: no majority to see", abc, nil, nil, nil, false},
	}
	for _, tc := range cases {
		if got := Majority("a", tc.agents, tc.members, tc.reachable, tc.heartbeats, t0); got != tc.want {
			t.Errorf("%s: majority %v, want %v", tc.name, got, tc.want)
		}
	}
}

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

func TestIsolated(t *testing.T) {
	after := time.Second
	cases := []struct {
		name       string
		memberlist bool
		minority   time.Duration // how long without a majority; 0: has one
		apiDown    time.Duration
		want       bool
	}{
		{"no majority and no API server for fence-after: isolated", true, time.Second, time.Second, true},
		{"not yet long enough without a majority", true, 900 * time.Millisecond, 5 * time.Second, false},
		{"the API server answers: keeps serving (its peers may all have died)", true, time.Minute, 0, false},
		{"a majority reached: keeps serving through an API outage of any length", true, 0, time.Hour, false},
		{"without memberlist an API outage of any length never fences", false, 0, time.Hour, false},
	}
	for _, tc := range cases {
		since := time.Time{}
		if tc.minority > 0 {
			since = t0.Add(-tc.minority)
		}
		if got := Isolated(tc.memberlist, since, tc.apiDown, t0, after); got != tc.want {
			t.Errorf("%s: isolated %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNewlyLost(t *testing.T) {
	peers := []string{"a", "b", "c"}
	cases := []struct {
		name            string
		reachable, lost map[string]bool
		want            bool
	}{
		{"every peer reached", map[string]bool{"a": true, "b": true, "c": true}, nil, false},
		{"b lost since the last look: check every peer directly",
			map[string]bool{"a": true, "c": true}, map[string]bool{}, true},
		{"b lost before (shut down for maintenance): no news, no check",
			map[string]bool{"a": true, "c": true}, map[string]bool{"b": true}, false},
		{"b lost before, c lost now", map[string]bool{"a": true}, map[string]bool{"b": true}, true},
		{"b back: no news", map[string]bool{"a": true, "b": true, "c": true}, map[string]bool{"b": true}, false},
	}
	for _, tc := range cases {
		if got := NewlyLost(peers, tc.reachable, tc.lost); got != tc.want {
			t.Errorf("%s: NewlyLost = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// How long the API server has not been heard from, after a failed read: since the last
// successful read, or since the last watch event when one came later (an overloaded API
// server streams events while its reads time out).
func TestAPIDown(t *testing.T) {
	cases := []struct {
		name    string
		failing bool
		ok      time.Duration // the last successful read, before t0
		heard   time.Duration // the last watch event, before t0 (0: none)
		want    time.Duration
	}{
		{"reads succeed: up", false, 3 * time.Second, 0, 0},
		{"a read failed, nothing heard since the last good one", true, 3 * time.Second, 0, 3 * time.Second},
		{"a read failed but events still arrive: down only since the last event", true, 3 * time.Second, 200 * time.Millisecond, 200 * time.Millisecond},
		{"an event older than the last good read changes nothing", true, 3 * time.Second, 10 * time.Second, 3 * time.Second},
	}
	for _, tc := range cases {
		f := &fenceWatch{apiFailing: tc.failing, apiOK: t0.Add(-tc.ok)}
		if tc.heard > 0 {
			f.heard = t0.Add(-tc.heard)
		}
		if got := f.apiDown(t0); got != tc.want {
			t.Errorf("%s: apiDown %v, want %v", tc.name, got, tc.want)
		}
		// A read is skipped only when an event is fresher than the fast check's pace.
		if skip, want := f.heardWithin(apiCheckIsolated, t0), tc.heard > 0 && tc.heard < apiCheckIsolated; skip != want {
			t.Errorf("%s: read skipped %v, want %v", tc.name, skip, want)
		}
	}
}
