package controllers

import (
	"strings"
	"testing"
)

// A controller in a pod leads under its pod's name, the same after a container restart;
// outside a pod every process gets a name of its own.
func TestLeaderIdentity(t *testing.T) {
	if id, err := LeaderIdentity("vigil-controller-7c9f-abcde"); err != nil || id != "vigil-controller-7c9f-abcde" {
		t.Errorf("in a pod: %q, %v; want the pod's name", id, err)
	}
	a, errA := LeaderIdentity("")
	b, errB := LeaderIdentity("")
	if errA != nil || errB != nil || a == b || !strings.Contains(a, "_") {
		t.Errorf("outside a pod: %q and %q (%v, %v); want hostname_uuid, distinct per process", a, b, errA, errB)
	}
}
