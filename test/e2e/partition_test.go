package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"vigil.dev/vigil/test/lab"
)

// The owner is cut off from everyone (API server, peers, client): the majority side moves
// the VIP at once, and the isolated owner releases it by itself within fence-after, so the
// address is never held twice once the partition heals.
func TestIsolatedOwnerFencesItself(t *testing.T) {
	v4 := lab.VIPv4(90)
	e, owner := newWebEnv(t, 3, v4)
	time.Sleep(time.Second)
	var others []string
	for _, n := range e.l.Nodes {
		if n.Name != owner {
			others = append(others, n.Name)
		}
	}
	cut := time.Now()
	if err := e.l.Partition([]string{owner}, append([]string{"cp", "client"}, others...)); err != nil {
		t.Fatal(err)
	}
	newOwner := e.owner(v4, 5*time.Second)
	answered := time.Since(cut)
	t.Logf("partition: %s cut off, %s answers after %v", owner, newOwner, answered.Round(time.Millisecond))
	if newOwner == owner {
		t.Fatalf("the isolated %s still answers", owner)
	}
	// The isolated owner gives the address up by itself: --fence-after (1 s) after it finds
	// itself without the API server and a majority. Two nodes hold it for about a second
	// at most.
	e.waitAddress(owner, v4, false, 10*time.Second)
	released := time.Since(cut)
	t.Logf("%s released the VIP %v after the cut: two holders for %v", owner, released.Round(time.Millisecond),
		(released - answered).Round(time.Millisecond))
	if released > 2500*time.Millisecond || released-answered > 1500*time.Millisecond {
		t.Errorf("the isolated owner kept the address %v after the cut (%v after the new owner answered); want about a second at most",
			released.Round(time.Millisecond), (released - answered).Round(time.Millisecond))
	}
	if err := e.l.Heal(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	holders := 0
	for _, n := range e.l.Nodes {
		out := e.addresses(n.Name)
		if strings.Contains(out, " "+v4.String()+"/") {
			holders++
		}
	}
	if holders != 1 {
		t.Errorf("after the partition healed %d nodes hold %s, want 1", holders, v4)
	}
	// The Events written while cut off arrive after the heal (the recorder retries).
	e.waitEvent("NodeAgent", owner, "Fenced", 30*time.Second)
	e.waitEvent("NodeAgent", owner, "Unfenced", 30*time.Second)
}

// Cordoning the owner's Node moves its VIPs, make before break.
func TestCordonMovesWithoutFailedRequests(t *testing.T) {
	v4 := lab.VIPv4(91)
	e, owner := newWebEnv(t, 2, v4)
	time.Sleep(time.Second)
	rec := e.record(v4, time.Minute)
	e.waitSteady(rec, 50)
	ctx := context.Background()
	var node corev1.Node
	if err := e.c.Get(ctx, client.ObjectKey{Name: owner}, &node); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(node.DeepCopy())
	node.Spec.Unschedulable = true
	cordon := time.Now()
	if err := e.c.Patch(ctx, &node, patch); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.WaitFor(10*time.Second, func(s []lab.Sample) bool {
		o := lab.AnalyzeFault(s, cordon, owner)
		return o.Recovered && s[len(s)-1].Start.Sub(o.FirstOKAfter) > time.Second
	}); err != nil {
		t.Fatalf("cordon of %s: the VIP did not move: %v", owner, err)
	}
	samples, err := rec.Stop()
	if err != nil {
		t.Fatal(err)
	}
	o := lab.AnalyzeFault(samples, cordon, owner)
	t.Logf("cordon of %s -> %s: %d failed requests, longest gap %v", owner, o.NewOwner, o.Failed, o.Duration.Round(time.Millisecond))
	if o.Failed != 0 {
		t.Errorf("%d failed requests while moving off a cordoned node (%s), want 0", o.Failed, o.Failures(cordon))
	}
	if tr := e.get("web").Status.LastTransition; tr == nil || tr.Reason != "OwnerDraining" {
		t.Errorf("last transition %+v, want OwnerDraining", tr)
	}
}
