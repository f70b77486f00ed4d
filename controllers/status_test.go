package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

func condition(s vigilv1.VirtualIPStatus, t string) *metav1.Condition {
	return meta.FindStatusCondition(s.Conditions, t)
}

func TestComputeStatus(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	later := metav1.NewTime(now.Add(time.Minute))
	vip := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: 3}, Spec: vigilv1.VirtualIPSpec{Address: "198.18.0.100"}}

	// Elected: epoch 1, waiting for the bind.
	s := computeStatus(vip, statusInput{Decision: Decision{Owner: "a", Standbys: []string{"b"}, Reason: vigilv1.ReasonElected}, Now: now})
	if s.Owner != "a" || s.Epoch != 1 || s.ObservedGeneration != 3 || s.LastTransition.Reason != vigilv1.ReasonElected || s.LastTransition.To != "a" {
		t.Fatalf("after election: %+v", s)
	}
	if c := condition(s, vigilv1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != vigilv1.ReasonBinding {
		t.Errorf("Ready before the bind: %+v", c)
	}
	// The owner reports the bind at this epoch: Ready.
	vip.Status = s
	s = computeStatus(vip, statusInput{Decision: Decision{Owner: "a", Standbys: []string{"b"}},
		OwnerReport: &vigilv1.VIPEligibility{Name: "db", Eligible: true, BoundEpoch: 1, Interface: "eth0"}, Now: later})
	if c := condition(s, vigilv1.ConditionReady); c.Status != metav1.ConditionTrue || c.Reason != vigilv1.ReasonBound || s.Interface != "eth0" || s.Epoch != 1 {
		t.Errorf("Ready after the bind: %+v, status %+v", c, s)
	}
	// A bind reported for an older epoch does not count.
	vip.Status = s
	s = computeStatus(vip, statusInput{Decision: Decision{Owner: "b", Reason: vigilv1.ReasonOwnerLost},
		OwnerReport: &vigilv1.VIPEligibility{Name: "db", Eligible: true, BoundEpoch: 1}, Now: later})
	if s.Epoch != 2 || s.LastTransition.From != "a" || s.LastTransition.Reason != vigilv1.ReasonOwnerLost {
		t.Errorf("move: %+v", s)
	}
	if c := condition(s, vigilv1.ConditionReady); c.Status != metav1.ConditionFalse {
		t.Errorf("Ready with a stale bind report: %+v", c)
	}
	// Fail open is Degraded.
	vip.Status = s
	s = computeStatus(vip, statusInput{Decision: Decision{Owner: "b", Degraded: true, Message: "no node is eligible"}, Now: later})
	if c := condition(s, vigilv1.ConditionDegraded); c.Status != metav1.ConditionTrue || c.Reason != vigilv1.ReasonNoEligibleNode {
		t.Errorf("Degraded: %+v", c)
	}
	// A conflict takes the address away and says with whom.
	vip.Status = s
	s = computeStatus(vip, statusInput{Decision: Decision{Owner: "b"}, ConflictWith: "older", Now: later})
	if s.Owner != "" || s.Epoch != 3 || s.LastTransition.Reason != vigilv1.ReasonAddressInUse {
		t.Errorf("conflict: %+v", s)
	}
	if c := condition(s, vigilv1.ConditionConflict); c.Status != metav1.ConditionTrue || c.Message != "198.18.0.100 is already used by VirtualIP older; this one is not bound" {
		t.Errorf("Conflict: %+v", c)
	}
	// Without an owner, Degraded does not claim that an owner passes its checks.
	if c := condition(s, vigilv1.ConditionDegraded); c.Status != metav1.ConditionFalse || c.Reason != vigilv1.ReasonNoOwner {
		t.Errorf("Degraded without owner: %+v, want False with reason NoOwner", c)
	}
}

func TestComputeStatusKeepsTransitionTimesWhileUnchanged(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	vip := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: 1}}
	vip.Status = computeStatus(vip, statusInput{Now: now})
	vip.Generation = 2
	s := computeStatus(vip, statusInput{Now: metav1.NewTime(now.Add(time.Hour))})
	ready := condition(s, vigilv1.ConditionReady)
	if !ready.LastTransitionTime.Equal(&now) || ready.ObservedGeneration != 2 || ready.Reason != vigilv1.ReasonNoOwner {
		t.Errorf("Ready %+v: want the old transition time, generation 2, NoOwner", ready)
	}
	if s.Epoch != 0 || s.LastTransition != nil {
		t.Errorf("no owner change, yet epoch %d, transition %+v", s.Epoch, s.LastTransition)
	}
}
