package controllers

import (
	"testing"
	"time"
)

func TestAgentAlive(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	timeout := 30 * time.Second
	fresh, stale := now.Add(-5*time.Second), now.Add(-time.Minute)
	cases := []struct {
		name      string
		heartbeat time.Time
		member    *MemberState
		want      bool
	}{
		{"no memberlist, fresh heartbeat", fresh, nil, true},
		{"no memberlist, stale heartbeat", stale, nil, false},
		{"memberlist alive, stale heartbeat (API outage): alive", stale, &MemberState{Alive: true, Since: stale}, true},
		{"memberlist dead after the last heartbeat: dead at once", fresh, &MemberState{Alive: false, Since: now.Add(-time.Second)}, false},
		{"memberlist dead, but a heartbeat since: alive", now.Add(-time.Second), &MemberState{Alive: false, Since: now.Add(-3 * time.Second)}, true},
		{"memberlist dead long ago, heartbeat since but stale", stale, &MemberState{Alive: false, Since: now.Add(-2 * time.Minute)}, false},
	}
	for _, tc := range cases {
		if got := AgentAlive(tc.heartbeat, tc.member, now, timeout); got != tc.want {
			t.Errorf("%s: alive=%v, want %v", tc.name, got, tc.want)
		}
	}
}
