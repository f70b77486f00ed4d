package lab

import (
	"testing"
	"time"
)

// blocks reports whether acquiring f waits (for 50 ms) while held is held.
func blocks(t *testing.T, held, f PlannedFault) bool {
	t.Helper()
	var fl faultLocks
	release := fl.acquire(held)
	got := make(chan func(), 1)
	go func() { got <- fl.acquire(f) }()
	select {
	case r := <-got:
		r()
		release()
		return false
	case <-time.After(50 * time.Millisecond):
	}
	release()
	select {
	case r := <-got:
		r()
	case <-time.After(time.Second):
		t.Fatalf("%v still waits after %v was released", f, held)
	}
	return true
}

// Two faults never act on one target at once, even when an undo runs late.
func TestFaultLocksKeepFaultsApart(t *testing.T) {
	cases := []struct {
		held, next PlannedFault
		wait       bool
	}{
		{PlannedFault{Kind: FaultNodeCrash, Node: "node-a"}, PlannedFault{Kind: FaultServiceStop, Node: "node-a"}, true},
		{PlannedFault{Kind: FaultNodeCrash, Node: "node-a"}, PlannedFault{Kind: FaultServiceStop, Node: "node-b"}, false},
		{PlannedFault{Kind: FaultIsolateNode, Node: "node-a"}, PlannedFault{Kind: FaultSplitFromPeers, Node: "node-b"}, true},
		{PlannedFault{Kind: FaultAPIStop}, PlannedFault{Kind: FaultVIPRecreate, VIP: "web4-a"}, true},
		{PlannedFault{Kind: FaultVIPRecreate, VIP: "web4-a"}, PlannedFault{Kind: FaultAPIStop}, true},
		{PlannedFault{Kind: FaultVIPRecreate, VIP: "web4-a"}, PlannedFault{Kind: FaultVIPRecreate, VIP: "web4-b"}, false},
		{PlannedFault{Kind: FaultVIPRecreate, VIP: "web4-a"}, PlannedFault{Kind: FaultVIPRecreate, VIP: "web4-a"}, true},
		{PlannedFault{Kind: FaultAPIStop}, PlannedFault{Kind: FaultNodeCrash, Node: "node-a"}, false},
		{PlannedFault{Kind: FaultCPUBurn}, PlannedFault{Kind: FaultCPUBurn}, true},
	}
	for _, c := range cases {
		if got := blocks(t, c.held, c.next); got != c.wait {
			t.Errorf("%v while %v is held: waits %v, want %v", c.next, c.held, got, c.wait)
		}
	}
}
