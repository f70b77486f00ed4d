package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"vigil.dev/vigil/test/lab"
)

// kube-apiserver is stopped (SIGSTOP) for 60 s: clients see no error, and a node crash in
// the middle of the outage still fails over (see docs/design.md, "API outage").
func TestAPIOutage(t *testing.T) {
	e := newEnv(t, 3)
	e.startVigil()
	v4 := lab.VIPv4(60)
	e.apply(webVIP("web", v4))
	owner := e.owner(v4, 5*time.Second)
	time.Sleep(2 * time.Second) // standbys reported, statuses settled
	rec, err := e.l.StartRecorder(lab.RecordOptions{URL: url(v4), Duration: 3 * time.Minute, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = rec.Stop() }()
	if _, err := rec.WaitFor(5*time.Second, func(s []lab.Sample) bool { return len(s) > 50 && s[len(s)-1].OK }); err != nil {
		t.Fatal(err)
	}
	api, err := e.l.APIServer()
	if err != nil {
		t.Fatal(err)
	}
	outage := time.Now()
	if err := api.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = api.Signal(syscall.SIGCONT)
		}
	}()

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
	samples, err = rec.WaitFor(20*time.Second, func(s []lab.Sample) bool { return lab.AnalyzeFault(s, crash, owner).Recovered })
	if err != nil {
		t.Fatalf("no failover during the API outage: %v", err)
	}
	o := lab.AnalyzeFault(samples, crash, owner)
	t.Logf("crash of %s during the API outage -> %s after %v", owner, o.NewOwner, o.Duration.Round(time.Millisecond))

	// The API server returns after 60 s: the controller agrees, nothing else moves.
	time.Sleep(time.Until(outage.Add(60 * time.Second)))
	if err := api.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	back := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s := e.get("web").Status; s.Owner == o.NewOwner && findCond(s.Conditions, "Ready").Status == "True" {
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

// apiBlip stops kube-apiserver (SIGSTOP) for d and resumes it: what an overloaded or
// restarting API server looks like to its clients. It returns when the outage began and
// ended; the API server is resumed even if the test fails meanwhile.
func (e *env) apiBlip(d time.Duration) (began, ended time.Time) {
	e.t.Helper()
	api, err := e.l.APIServer()
	if err != nil {
		e.t.Fatal(err)
	}
	began = time.Now()
	if err := api.Signal(syscall.SIGSTOP); err != nil {
		e.t.Fatal(err)
	}
	time.Sleep(d)
	if err := api.Signal(syscall.SIGCONT); err != nil {
		e.t.Fatal(err)
	}
	return began, time.Now()
}

// waitControllerLeads waits until a controller has renewed the leader Lease after since
// (an outage longer than its renew deadline makes it exit and a new one elect itself), and
// returns when.
func (e *env) waitControllerLeads(since time.Time, within time.Duration) time.Time {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var lease coordinationv1.Lease
		err := e.c.Get(context.Background(), client.ObjectKey{Namespace: lab.VigilNamespace, Name: "vigil-controller.vigil.dev"}, &lease)
		if err == nil && lease.Spec.RenewTime != nil && lease.Spec.RenewTime.After(since) &&
			lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
			return time.Now()
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no controller renewed its leader Lease within %v after %v (%v, %+v)", within, since.Format(time.StampMilli), err, lease.Spec)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
