package controllers_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// scaleNodes is more nodes than status.standbys could list (256) if it were not capped.
const scaleNodes = 300

// inParallel runs do(0..n-1) on a few goroutines and fails the test on the first error.
func inParallel(t *testing.T, n int, do func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				if err := do(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// With hundreds of eligible nodes, the status still fits its schema: the controller lists
// the best MaxStandbys standbys, and its one status write succeeds.
func TestStatusFitsWithHundredsOfEligibleNodes(t *testing.T) {
	ctx := context.Background()
	labels := map[string]string{"vigil.dev/test": "scale"}
	t.Cleanup(func() {
		_ = env.Client.DeleteAllOf(context.Background(), &vigilv1.NodeAgent{}, client.MatchingLabels(labels))
		_ = env.Client.DeleteAllOf(context.Background(), &corev1.Node{}, client.MatchingLabels(labels))
	})
	started := time.Now()
	now := metav1.NewTime(started)
	since := metav1.NewMicroTime(started.Add(-time.Minute))
	inParallel(t, scaleNodes, func(i int) error {
		name := fmt.Sprintf("scale-%03d", i)
		if err := env.Client.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}); err != nil {
			return fmt.Errorf("creating Node %s: %w", name, err)
		}
		a := &vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if err := env.Client.Create(ctx, a); err != nil {
			return fmt.Errorf("creating NodeAgent %s: %w", name, err)
		}
		a.Status = vigilv1.NodeAgentStatus{HeartbeatTime: now, VIPs: []vigilv1.VIPEligibility{
			{Name: "scale", Eligible: true, Since: since, Reason: "all health checks passing"}}}
		if err := env.Client.Status().Update(ctx, a); err != nil {
			return fmt.Errorf("reporting from NodeAgent %s: %w", name, err)
		}
		return nil
	})
	t.Logf("%d Nodes and NodeAgents written in %v", scaleNodes, time.Since(started).Round(time.Millisecond))

	startReconciler(t, liveAgents)
	createVIP(t, "scale", "198.18.5.10")
	got := waitFor(t, "scale", "an owner and standbys", func(v *vigilv1.VirtualIP) bool {
		return v.Status.Owner != "" && len(v.Status.Standbys) > 0
	})
	if len(got.Status.Standbys) != vigilv1.MaxStandbys {
		t.Errorf("%d standbys of %d eligible nodes, want %d", len(got.Status.Standbys), scaleNodes-1, vigilv1.MaxStandbys)
	}
	if ready := meta.FindStatusCondition(got.Status.Conditions, vigilv1.ConditionReady); ready == nil || ready.Reason != vigilv1.ReasonBinding {
		t.Errorf("Ready = %+v, want reason Binding (an owner elected, no bind reported)", ready)
	}
	t.Logf("owner %s, standbys %v, after %v in all", got.Status.Owner, got.Status.Standbys, time.Since(started).Round(time.Millisecond))
}
