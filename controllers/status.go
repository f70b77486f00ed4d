package controllers

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// computeStatus returns the status the controller wants on vip at time now. It is a pure
// function of its inputs so that every rule is tested without a cluster.
//
// Election does not exist yet, so no node ever owns the address: Ready is False with reason
// NoOwner, which is exactly what is true.
func computeStatus(vip *vigilv1.VirtualIP, now metav1.Time) vigilv1.VirtualIPStatus {
	status := *vip.Status.DeepCopy()
	status.ObservedGeneration = vip.Generation
	setReadyCondition(&status, vip.Generation, now)
	return status
}

// setReadyCondition sets the Ready condition from status.owner.
func setReadyCondition(status *vigilv1.VirtualIPStatus, generation int64, now metav1.Time) {
	cond := metav1.Condition{
		Type:               vigilv1.ConditionReady,
		Status:             metav1.ConditionFalse,
		Reason:             vigilv1.ReasonNoOwner,
		Message:            "no node holds the address",
		ObservedGeneration: generation,
		LastTransitionTime: now,
	}
	// SetStatusCondition keeps LastTransitionTime when the status does not change.
	meta.SetStatusCondition(&status.Conditions, cond)
}
