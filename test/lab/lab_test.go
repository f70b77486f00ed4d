package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func url(a fmt.Stringer) string {
	return fmt.Sprintf("http://%s/", net.JoinHostPort(a.String(), "80"))
}

func hostLinks(t *testing.T) string {
	t.Helper()
	out, err := ip("-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			names = append(names, f[1])
		}
	}
	return strings.Join(names, " ")
}

// The smoke test: a 3-node lab with a real API server, traffic across the bridge in IPv4
// and IPv6, real faults seen by the recorder, and a teardown that leaves nothing behind.
func TestLabSmoke(t *testing.T) {
	linksBefore := hostLinks(t)
	l, err := Up(context.Background(), Config{Nodes: 3, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	tornDown := false
	t.Cleanup(func() {
		if !tornDown {
			_ = l.Down()
		}
	})
	t.Run("nodes are registered with the API server", func(t *testing.T) { expectNodesRegistered(t, l) })
	t.Run("client reaches every node over IPv4 and IPv6", func(t *testing.T) { expectEveryNodeReached(t, l) })
	t.Run("recorder sees a stopped service and its return", func(t *testing.T) { expectServiceOutageRecorded(t, l) })
	t.Run("crashed node times out over IPv6 until restored", func(t *testing.T) { expectCrashAndRestore(t, l) })
	t.Run("partition cuts a node off and heals", func(t *testing.T) { expectPartitionAndHeal(t, l) })
	t.Run("API outage stops and resumes the API server", func(t *testing.T) { expectAPIOutage(t, l) })
	t.Run("CPU burners are bounded", func(t *testing.T) { expectBurnersBounded(t, l) })
	tornDown = true
	expectNothingLeftBehind(t, l, linksBefore)
}

func expectNodesRegistered(t *testing.T, l *Lab) {
	var nodes corev1.NodeList
	if err := kubeClient(t, l).List(context.Background(), &nodes, client.HasLabels{NodeLabel}); err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 3 {
		t.Fatalf("want 3 Node objects, got %d", len(nodes.Items))
	}
	for _, n := range nodes.Items {
		if n.Labels["kubernetes.io/hostname"] != n.Name {
			t.Errorf("node %s has hostname label %q", n.Name, n.Labels["kubernetes.io/hostname"])
		}
	}
}

func expectEveryNodeReached(t *testing.T, l *Lab) {
	for _, n := range l.Nodes {
		for _, a := range []fmt.Stringer{n.IPv4, n.IPv6} {
			body, err := l.Get(context.Background(), url(a), time.Second)
			if err != nil || body != n.Name {
				t.Errorf("GET %s: %q, %v; want %q", url(a), body, err, n.Name)
			}
		}
	}
}

func expectServiceOutageRecorded(t *testing.T, l *Lab) {
	node := l.Nodes[1]
	rec, err := l.StartRecorder(RecordOptions{URL: url(node.IPv4), Duration: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rec.WaitFor(5*time.Second, func(s []Sample) bool { return countOK(s, node.Name) >= 20 }); err != nil {
		t.Fatal(err)
	}
	fault := time.Now()
	if err := l.StopService(node.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.WaitFor(5*time.Second, func(s []Sample) bool { return countFailedAfter(s, fault) >= 10 }); err != nil {
		t.Fatal(err)
	}
	down := time.Since(fault)
	if err := l.StartService(node.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.WaitFor(5*time.Second, func(s []Sample) bool { return AnalyzeFault(s, fault, "").Recovered }); err != nil {
		t.Fatal(err)
	}
	s, err := rec.Stop()
	if err != nil {
		t.Fatal(err)
	}
	o := AnalyzeFault(s, fault, "")
	if o.Failed < 10 || o.Duration < down || o.NewOwner != node.Name {
		t.Errorf("recorder saw %+v; want >= 10 failures, an outage of at least %v, answered by %s again", o, down, node.Name)
	}
	for _, x := range s {
		// Refused once the service is gone; reset for a request it was killed under.
		if !x.OK && x.Start.After(fault) && x.Err != "refused" && x.Err != "reset" {
			t.Errorf("a request to a stopped service failed with %q, want refused", x.Err)
			break
		}
	}
	t.Logf("service down for %v: outage %v, %d failed requests", down.Round(time.Millisecond), o.Duration.Round(time.Millisecond), o.Failed)
}

func expectCrashAndRestore(t *testing.T, l *Lab) {
	ctx := context.Background()
	node := l.Nodes[2]
	if err := l.CrashNode(node.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(ctx, url(node.IPv6), 300*time.Millisecond); err == nil {
		t.Fatal("a crashed node answered")
	}
	pids, err := nsPIDs(node.NS)
	if err != nil || len(pids) != 0 {
		t.Fatalf("processes left in crashed node: %v %v", pids, err)
	}
	if err := l.RestoreNode(node.Name); err != nil {
		t.Fatal(err)
	}
	if body, err := l.Get(ctx, url(node.IPv6), time.Second); err != nil || body != node.Name {
		t.Fatalf("restored node: %q, %v", body, err)
	}
}

func expectPartitionAndHeal(t *testing.T, l *Lab) {
	ctx := context.Background()
	node := l.Nodes[0]
	if err := l.Partition([]string{node.Name}, []string{"client", "cp", l.Nodes[1].Name, l.Nodes[2].Name}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(ctx, url(node.IPv4), 300*time.Millisecond); err == nil {
		t.Error("partitioned node answered the client")
	}
	if body, err := l.Get(ctx, url(l.Nodes[1].IPv4), time.Second); err != nil || body != l.Nodes[1].Name {
		t.Errorf("node on the client's side: %q, %v", body, err)
	}
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	if body, err := l.Get(ctx, url(node.IPv4), time.Second); err != nil || body != node.Name {
		t.Errorf("healed node: %q, %v", body, err)
	}
}

func expectAPIOutage(t *testing.T, l *Lab) {
	ctx := context.Background()
	api, err := l.APIServer()
	if err != nil {
		t.Fatal(err)
	}
	c := kubeClient(t, l)
	if err := api.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = c.List(short, &corev1.NodeList{})
	cancel()
	if err == nil {
		t.Error("a stopped API server answered")
	}
	if err := api.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// A fresh client: the old one's connection waits out its own timeouts.
	if err := kubeClient(t, l).List(ctx, &corev1.NodeList{}); err != nil {
		t.Errorf("resumed API server: %v", err)
	}
}

// kubeClient is a new admin client of the lab's API server.
func kubeClient(t *testing.T, l *Lab) client.Client {
	t.Helper()
	c, err := l.KubeClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func expectBurnersBounded(t *testing.T, l *Lab) {
	procs, err := l.StarveCPU(2, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if err := p.Wait(5 * time.Second); err != nil {
			t.Error(err)
		}
	}
}

// expectNothingLeftBehind tears the lab down and checks that no namespace, host link or
// process of it is left.
func expectNothingLeftBehind(t *testing.T, l *Lab, linksBefore string) {
	var pids []int
	l.mu.Lock()
	for _, p := range l.procs {
		pids = append(pids, p.PID())
	}
	l.mu.Unlock()
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	namespaces, err := listNamespaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces {
		if strings.HasPrefix(ns, l.Prefix) {
			t.Errorf("namespace %s left behind", ns)
		}
	}
	if after := hostLinks(t); after != linksBefore {
		t.Errorf("host links changed:\nbefore %s\nafter  %s", linksBefore, after)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after teardown (kill 0: %v)", pid, err)
		}
	}
}

func countOK(s []Sample, node string) int {
	n := 0
	for _, x := range s {
		if x.OK && x.Node == node {
			n++
		}
	}
	return n
}

func countFailedAfter(s []Sample, t time.Time) int {
	n := 0
	for _, x := range s {
		if !x.OK && !x.Start.Before(t) {
			n++
		}
	}
	return n
}

// A run whose owner died is removed by DownAll; live ones (this test's, and those of other
// test packages running at the same time) are left alone.
func TestDownAllRemovesOnlyCrashedRuns(t *testing.T) {
	live := ForTest(t, Config{Nodes: 1, WithoutControlPlane: true})
	crashed, err := Up(context.Background(), Config{Nodes: 1, WithoutControlPlane: true, HelperBin: live.HelperBin})
	if err != nil {
		t.Fatal(err)
	}
	// Pretend its owner died: a PID that cannot exist.
	crashed.state.OwnerPID = 1 << 30
	if err := crashed.saveState(); err != nil {
		t.Fatal(err)
	}
	removed, err := DownAll(false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, crashed.Prefix) || slices.ContainsFunc(removed, func(r string) bool { return strings.HasPrefix(r, live.Prefix) }) {
		t.Fatalf("DownAll removed %v, want %s and not %s", removed, crashed.Prefix, live.Prefix)
	}
	namespaces, _ := listNamespaces()
	for _, ns := range namespaces {
		if strings.HasPrefix(ns, crashed.Prefix) {
			t.Errorf("crashed run's namespace %s left behind", ns)
		}
	}
	if body, err := live.Get(context.Background(), url(live.Nodes[0].IPv4), time.Second); err != nil || body != "node-a" {
		t.Errorf("the live run was disturbed: %q, %v", body, err)
	}
	_ = crashed.Down() // already gone; must not fail
}
