package controllers_test

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/controllers"
	"vigil.dev/vigil/internal/scheme"
)

// startReconciler runs the VirtualIP reconciler, with the cache Run gives it, until the
// test ends; options set more of its fields.
func startReconciler(t *testing.T, options ...func(*controllers.VirtualIPReconciler)) {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:  scheme.New(),
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   controllers.CacheOptions(),
		// Every test runs its own manager, each with a controller named virtualip.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &controllers.VirtualIPReconciler{Client: mgr.GetClient(), Clock: clock.RealClock{}, Observer: &controllers.Observer{}}
	for _, o := range options {
		o(r)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

// waitForStatus polls until the VirtualIP's status has observed its generation.
func waitForStatus(t *testing.T, name string) *vigilv1.VirtualIP {
	t.Helper()
	return waitFor(t, name, "its generation observed", func(vip *vigilv1.VirtualIP) bool {
		return vip.Status.ObservedGeneration == vip.Generation
	})
}

func TestControllerKeepsObservedGenerationAndReadyHonest(t *testing.T) {
	startReconciler(t)
	ctx := context.Background()
	vip := &vigilv1.VirtualIP{
		ObjectMeta: metav1.ObjectMeta{Name: "status-db"},
		Spec:       vigilv1.VirtualIPSpec{Address: "198.18.2.10"},
	}
	create(t, vip)

	got := waitForStatus(t, vip.Name)
	ready := meta.FindStatusCondition(got.Status.Conditions, vigilv1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != vigilv1.ReasonNoOwner {
		t.Fatalf("Ready = %+v, want False with reason NoOwner (no election yet)", ready)
	}
	if got.Status.Owner != "" {
		t.Errorf("owner = %q though nothing elects one", got.Status.Owner)
	}
	firstTransition := ready.LastTransitionTime

	// A spec change bumps the generation; the controller follows it.
	got.Spec.Announce.Count = 5
	if err := env.Client.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	got = waitForStatus(t, vip.Name)
	if got.Generation != 2 {
		t.Fatalf("generation = %d after one spec change, want 2", got.Generation)
	}
	ready = meta.FindStatusCondition(got.Status.Conditions, vigilv1.ConditionReady)
	if ready.ObservedGeneration != 2 || !ready.LastTransitionTime.Equal(&firstTransition) {
		t.Errorf("Ready after spec change = %+v, want observedGeneration 2 and unchanged transition time", ready)
	}
}
