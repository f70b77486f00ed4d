package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

func TestComputeStatusWithoutOwnerIsNotReady(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	vip := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: 3}}

	status := computeStatus(vip, t0)

	if status.ObservedGeneration != 3 {
		t.Errorf("observedGeneration = %d, want 3", status.ObservedGeneration)
	}
	ready := meta.FindStatusCondition(status.Conditions, vigilv1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != vigilv1.ReasonNoOwner ||
		ready.ObservedGeneration != 3 || !ready.LastTransitionTime.Equal(&t0) {
		t.Fatalf("Ready condition = %+v, want False/NoOwner at generation 3 since %v", ready, t0)
	}
}

func TestComputeStatusKeepsTransitionTimeWhileUnchanged(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Hour))
	vip := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: 1}}
	vip.Status = computeStatus(vip, t0)

	vip.Generation = 2
	status := computeStatus(vip, t1)

	ready := meta.FindStatusCondition(status.Conditions, vigilv1.ConditionReady)
	if !ready.LastTransitionTime.Equal(&t0) {
		t.Errorf("lastTransitionTime moved to %v though Ready did not change", ready.LastTransitionTime)
	}
	if ready.ObservedGeneration != 2 || status.ObservedGeneration != 2 {
		t.Errorf("generation not followed: condition %d, status %d", ready.ObservedGeneration, status.ObservedGeneration)
	}
}
