package controllers

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
	"vigil.dev/vigil/internal/scheme"
	"vigil.dev/vigil/test/lab"
)

// The node watch against real kernels: nodes in a lab answer the echo requests sent from
// the client's namespace (where the controller would run); a crashed node falls silent
// within deadAfter and an interval or two, and answers again once restored; a node whose
// agent is starved of CPU is not silent; when the watcher itself is cut off, nobody is.
func TestNodeWatchInTheLab(t *testing.T) {
	l := lab.ForTest(t, lab.Config{Nodes: 3, WithoutControlPlane: true})
	ns, err := netns.GetFromName(l.Client.NS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	var objs []vigilv1.NodeAgent
	for i, n := range l.Nodes {
		addr := n.IPv4.String() + ":7952"
		if i == 2 { // one node watched over IPv6
			addr = "[" + n.IPv6.String() + "]:7952"
		}
		objs = append(objs, vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: n.Name}, Status: vigilv1.NodeAgentStatus{MemberlistAddress: addr}})
	}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithLists(&vigilv1.NodeAgentList{Items: objs}, &corev1.NodeList{}).Build()
	const interval, deadAfter = 20 * time.Millisecond, 150 * time.Millisecond
	var changes atomic.Int32
	w := &nodeWatch{Client: c, NS: ns, Interval: interval, DeadAfter: deadAfter, Log: testr.New(t), OnChange: func() { changes.Add(1) }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	members := map[string]membership.State{"node-a": {Alive: true}}
	silent := func() map[string]membership.State {
		out := map[string]membership.State{}
		for name, s := range w.Overlay(members) {
			if !s.Alive {
				out[name] = s
			}
		}
		return out
	}
	waitFor := func(what string, within time.Duration, ok func(map[string]membership.State) bool) time.Duration {
		t.Helper()
		start := time.Now()
		for time.Since(start) < within {
			if ok(silent()) {
				return time.Since(start)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("%s: not within %v (silent: %v)", what, within, silent())
		return 0
	}
	none := func(s map[string]membership.State) bool { return len(s) == 0 }

	time.Sleep(time.Second) // every node answers
	if s := silent(); len(s) != 0 || changes.Load() != 0 {
		t.Fatalf("nodes silent while all answer: %v (%d changes)", s, changes.Load())
	}

	// A node whose processes are starved of CPU still answers: its kernel does.
	burners, err := l.StarveCPU(8, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range burners {
		_ = b.Wait(10 * time.Second)
	}
	if changes.Load() != 0 {
		t.Fatalf("a node counted silent while starved of CPU (%d changes)", changes.Load())
	}

	for _, node := range []string{"node-a", "node-c"} { // over IPv4 and over IPv6
		crashed := time.Now()
		if err := l.CrashNode(node); err != nil {
			t.Fatal(err)
		}
		waitFor(node+" silent after its crash", 2*time.Second, func(s map[string]membership.State) bool {
			_, ok := s[node]
			return ok && len(s) == 1
		})
		took := time.Since(crashed)
		t.Logf("%s silent %v after its crash", node, took.Round(time.Millisecond))
		if took < deadAfter {
			t.Errorf("%s counted silent %v after its crash, before deadAfter %v", node, took, deadAfter)
		}
		if s := silent()[node]; s.Since.Before(crashed.Add(-interval)) || s.Since.After(crashed.Add(3*interval)) {
			t.Errorf("%s silent since %v, %v from its crash: want its first unanswered request", node, s.Since, s.Since.Sub(crashed))
		}
		if err := l.RestoreNode(node); err != nil {
			t.Fatal(err)
		}
		waitFor(node+" answering again once restored", 2*time.Second, none)
	}

	// The watcher itself cut off: every node is silent, so none counts as silent.
	if _, err := l.Exec("client", "ip", "link", "set", lab.NodeInterface, "down"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * deadAfter)
	if s := silent(); len(s) != 0 {
		t.Errorf("the watcher cut off counts nodes silent: %v", s)
	}
}
