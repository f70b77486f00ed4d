package e2e

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/test/lab"
)

// preemption: Always moves the VIP back to the preferred node once it has been eligible
// for preemptionDelay; Never leaves it on the node that took over.
func TestPreemption(t *testing.T) {
	e := newVigilEnv(t, 2)
	always, never := lab.VIPv4(70), lab.VIPv4(71)
	e.apply(webVIP("always", always, preferNode("node-a", 200), func(v *vigilv1.VirtualIP) {
		v.Spec.Preemption = vigilv1.PreemptionAlways
		v.Spec.PreemptionDelay = &metav1.Duration{Duration: 3 * time.Second}
	}))
	e.apply(webVIP("never", never, preferNode("node-a", 200)))
	e.waitStatusOwner("always", "node-a", 5*time.Second)
	e.waitStatusOwner("never", "node-a", 5*time.Second)

	// node-a's service dies: both move to node-b.
	if err := e.l.StopService("node-a"); err != nil {
		t.Fatal(err)
	}
	e.waitStatusOwner("always", "node-b", 5*time.Second)
	e.waitStatusOwner("never", "node-b", 5*time.Second)

	// It comes back: "always" returns to node-a after the 3 s delay, "never" stays.
	back := time.Now()
	if err := e.l.StartService("node-a"); err != nil {
		t.Fatal(err)
	}
	e.waitStatusOwner("always", "node-a", 10*time.Second)
	took := time.Since(back)
	if took < 3*time.Second {
		t.Errorf("preempted after %v, before the 3s preemptionDelay", took)
	}
	if tr := e.get("always").Status.LastTransition; tr == nil || tr.Reason != "Preempted" {
		t.Errorf("last transition %+v, want Preempted", tr)
	}
	// The status can be read a moment before node-a's announcement reaches the client.
	e.waitAnswer(always, "node-a", time.Second)
	time.Sleep(2 * time.Second)
	if owner := e.get("never").Status.Owner; owner != "node-b" {
		t.Errorf("preemption: Never moved the VIP back to %s", owner)
	}
	t.Logf("preempted back to node-a %v after it recovered (delay 3s)", took.Round(time.Millisecond))
}

// Both cores busy for 20 s: no owner changes with default settings.
func TestNoFalseFailoverUnderCPUStarvation(t *testing.T) {
	v4 := lab.VIPv4(80)
	e, owner := newWebEnv(t, 3, v4)
	time.Sleep(2 * time.Second)
	before := e.get("web").Status.Epoch
	removed := e.watchRemovals(owner, v4)
	// 8 burners on this 2-core machine, on every node: each agent gets a small share.
	burners, err := e.l.StarveCPU(8, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range burners {
		if err := b.Wait(40 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	if after := e.get("web").Status; after.Epoch != before {
		t.Errorf("the VIP moved under CPU starvation: epoch %d -> %d, last transition %+v", before, after.Epoch, after.LastTransition)
	}
	// The owner renewed its address's kernel lifetime in time all along: it never lapsed.
	if n := removed(); n > 0 {
		t.Errorf("the owner's address was removed %d times under starvation (its lifetime lapsed)", n)
	}
	longest := e.longestRenewalInterval(owner)
	t.Logf("longest interval between address renewals on %s under 8 burners: at most %v (due every 250ms; the address lapses after 1s)", owner, longest)
	if longest >= time.Second {
		t.Errorf("renewals came %v apart under starvation: the address could lapse", longest)
	}
}
