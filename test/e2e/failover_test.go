package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/test/lab"
)

func TestApplyCrashServiceDownAndPlannedHandover(t *testing.T) {
	e := newVigilEnv(t, 3)
	v4 := lab.VIPv4(10)

	start := time.Now()
	e.apply(webVIP("web", v4))
	first := e.owner(v4, 5*time.Second)
	t.Logf("apply -> answered by %s after %v", first, time.Since(start).Round(time.Millisecond))
	deadline := time.Now().Add(5 * time.Second)
	for s := e.get("web").Status; s.Owner != first || s.Epoch != 1 || len(s.Standbys) != 2 ||
		meta.FindStatusCondition(s.Conditions, vigilv1.ConditionReady).Status != metav1.ConditionTrue; s = e.get("web").Status {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, want owner %s at epoch 1, Ready, with 2 standbys", s, first)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The owner's service dies: its check fails and the VIP moves.
	rec := e.startRecorder(v4)
	fault := time.Now()
	if err := e.l.StopService(first); err != nil {
		t.Fatal(err)
	}
	o := e.failedOver(rec, fault, first, 10*time.Second, "service down on "+first)
	t.Logf("service down on %s -> %s after %v", first, o.NewOwner, o.Duration.Round(time.Millisecond))
	if tr := e.get("web").Status.LastTransition; tr == nil || tr.Reason != "OwnerUnhealthy" {
		t.Errorf("last transition %+v, want OwnerUnhealthy", tr)
	}
	e.waitEvent("VirtualIP", "web", "HealthCheckFailing", 5*time.Second, first+": check web fails: ", "connection refused")
	if err := e.l.StartService(first); err != nil {
		t.Fatal(err)
	}

	// The new owner's node crashes: a standby takes over.
	second := o.NewOwner
	fault = time.Now()
	if err := e.l.CrashNode(second); err != nil {
		t.Fatal(err)
	}
	o = e.failedOver(rec, fault, second, 15*time.Second, "crash of "+second)
	t.Logf("crash of %s -> %s after %v", second, o.NewOwner, o.Duration.Round(time.Millisecond))
	if tr := e.get("web").Status.LastTransition; tr == nil || tr.Reason != "OwnerLost" {
		t.Errorf("last transition %+v, want OwnerLost", tr)
	}

	// A planned stop of the owner's agent (SIGTERM): make before break, no failed request,
	// and a request in flight across the switch is still served by the old owner.
	third := o.NewOwner
	time.Sleep(time.Second)
	type answer struct {
		body string
		err  error
	}
	inFlight := make(chan answer, 1)
	go func() {
		body, err := e.l.Upload(context.Background(), url(v4), 1500*time.Millisecond)
		inFlight <- answer{body, err}
	}()
	time.Sleep(200 * time.Millisecond)
	agent, _ := e.l.Process(third + "/vigil-agent")
	fault = time.Now()
	if err := agent.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := agent.Wait(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	samples, err := rec.Stop()
	if err != nil {
		t.Fatal(err)
	}
	o = lab.AnalyzeFault(samples, fault, third)
	t.Logf("planned stop of %s -> %s: longest gap %v, %d failed requests", third, o.NewOwner, o.Duration.Round(time.Millisecond), o.Failed)
	if a := <-inFlight; a.err != nil || a.body != third {
		t.Errorf("a request open across the planned move: %q, %v; want it completed by %s", a.body, a.err, third)
	}
	if !o.Recovered || o.Failed != 0 {
		t.Errorf("planned handover from %s: recovered %v, %d failed requests (%s), want another node answering and 0 failed requests", third, o.Recovered, o.Failed, o.Failures(fault))
	}
}

func TestConflictAndSpread(t *testing.T) {
	e := newVigilEnv(t, 3)
	e.apply(webVIP("first", lab.VIPv4(20)))
	time.Sleep(50 * time.Millisecond) // a later creation time
	e.apply(webVIP("second", lab.VIPv4(20)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := e.get("second").Status
		if c := meta.FindStatusCondition(s.Conditions, vigilv1.ConditionConflict); c != nil && c.Status == metav1.ConditionTrue && e.get("first").Status.Owner != "" {
			if s.Owner != "" {
				t.Errorf("the newer VirtualIP has owner %q", s.Owner)
			}
			t.Logf("Conflict: %s", c.Message)
			// A VirtualIP that never had an owner says so in an Event too.
			e.waitEvent("VirtualIP", "second", vigilv1.ReasonAddressInUse, 5*time.Second)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Conflict on the newer VirtualIP: %+v", s)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// 20 VIPs spread over 3 nodes: none holds more than 8.
	for i := range 20 {
		e.apply(webVIP(fmt.Sprintf("spread-%02d", i), lab.VIPv4(30+i)))
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		var list vigilv1.VirtualIPList
		if err := e.c.List(context.Background(), &list); err != nil {
			t.Fatal(err)
		}
		counts, owned := map[string]int{}, 0
		for _, v := range list.Items {
			if v.Status.Owner != "" && len(v.Name) > 7 && v.Name[:7] == "spread-" {
				counts[v.Status.Owner]++
				owned++
			}
		}
		if owned == 20 {
			for node, n := range counts {
				if n > 8 {
					t.Errorf("%s holds %d of 20 VIPs: %v", node, n, counts)
				}
			}
			t.Logf("20 VIPs: %v", counts)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 20 VIPs owned: %v", owned, counts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
