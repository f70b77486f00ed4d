// Package controllers holds Vigil's reconcilers. They are thin: each reads the world,
// calls a pure function that decides, and writes the result in one status patch.
package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// VirtualIPReconciler keeps the status of every VirtualIP true.
type VirtualIPReconciler struct {
	Client client.Client
	Clock  clock.PassiveClock
}

// +kubebuilder:rbac:groups=vigil.dev,resources=virtualips,verbs=get;list;watch
// +kubebuilder:rbac:groups=vigil.dev,resources=virtualips/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete

// Reconcile computes the status of one VirtualIP and patches it when it changed.
func (r *VirtualIPReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var vip vigilv1.VirtualIP
	if err := r.Client.Get(ctx, req.NamespacedName, &vip); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	desired := computeStatus(&vip, metav1.NewTime(r.Clock.Now()))
	if equality.Semantic.DeepEqual(vip.Status, desired) {
		return ctrl.Result{}, nil
	}
	patched := vip.DeepCopy()
	patched.Status = desired
	if err := r.Client.Status().Patch(ctx, patched, client.MergeFrom(&vip)); err != nil {
		return ctrl.Result{}, fmt.Errorf("patching status of VirtualIP %s: %w", vip.Name, err)
	}
	log.FromContext(ctx).V(1).Info("status updated", "observedGeneration", desired.ObservedGeneration)
	return ctrl.Result{}, nil
}

// SetupWithManager registers the reconciler with mgr.
func (r *VirtualIPReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&vigilv1.VirtualIP{}).
		Named("virtualip").
		Complete(r)
}
