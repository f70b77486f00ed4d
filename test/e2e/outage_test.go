package e2e

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"vigil.dev/vigil/test/lab"
)

// kube-apiserver is stopped (SIGSTOP) for 60 s: clients see no error, and a node crash in
// the middle of the outage still fails over (see docs/concepts.md, "API outage").
func TestAPIOutage(t *testing.T) {
	v4 := lab.VIPv4(60)
	e, owner := newWebEnv(t, 3, v4)
	time.Sleep(2 * time.Second) // standbys reported, statuses settled
	rec := e.record(v4, 3*time.Minute)
	e.waitSteady(rec, 50)
	outage, resume := e.stopAPIServer()

	// 30 s of outage: the owner keeps serving, nothing fails.
	time.Sleep(30 * time.Second)
	samples, err := rec.Samples()
	if err != nil {
		t.Fatal(err)
	}
	if o := lab.AnalyzeFault(samples, outage, ""); o.Failed != 0 || o.Moves != 0 {
		t.Errorf("during the API outage: %d failed requests (%s), %d moves; want none", o.Failed, o.Failures(outage), o.Moves)
	}

	// The owner's node crashes while the API server is still down: its first live standby
	// takes over once the owner would have fenced itself.
	crash := time.Now()
	if err := e.l.CrashNode(owner); err != nil {
		t.Fatal(err)
	}
	o := e.failedOver(rec, crash, owner, 20*time.Second, "no failover during the API outage")
	t.Logf("crash of %s during the API outage -> %s after %v", owner, o.NewOwner, o.Duration.Round(time.Millisecond))

	// The API server returns after 60 s: the controller agrees, nothing else moves.
	time.Sleep(time.Until(outage.Add(60 * time.Second)))
	resume()
	back := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s := e.get("web").Status; s.Owner == o.NewOwner && meta.FindStatusCondition(s.Conditions, "Ready").Status == "True" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the outage the status did not settle on %s: %+v", o.NewOwner, e.get("web").Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	samples, err = rec.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if after := lab.AnalyzeFault(samples, back, o.NewOwner); after.Failed != 0 || after.Moves != 0 {
		t.Errorf("after the API server returned: %d failed requests (%s), %d moves; want none", after.Failed, after.Failures(back), after.Moves)
	}
	// The takeover's Event, recorded during the outage, reaches the API once it is back.
	e.waitEvent("VirtualIP", "web", "TakenOver", 30*time.Second)
}
