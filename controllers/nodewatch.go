package controllers

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/echo"
	"vigil.dev/vigil/internal/membership"
)

// nodeWatchTargetsEvery is how often the node watch re-reads which nodes to watch: a new
// node is watched within a second, long before it can own a VIP.
const nodeWatchTargetsEvery = time.Second

// maxUnanswered bounds the unanswered requests remembered per node: enough to span
// deadAfter many times over (KeepSilentSince remembers when a longer silence began).
const maxUnanswered = 256

// KeepSilentSince keeps, for a node silent before and still silent now, the time its
// silence began: the history holds only the last maxUnanswered requests (5.12 s at 20 ms),
// so after that SilentNodes dates the silence later at every tick. A moving date woke
// every VirtualIP every tick, and let a heartbeat seen just after the crash outlive the
// silence's start: a dead node's VIPs stayed on it for 5.3 s in the lab. It updates now
// in place and returns it.
func KeepSilentSince(before, now map[string]time.Time) map[string]time.Time {
	for name, since := range now {
		if earlier, ok := before[name]; ok && earlier.Before(since) {
			now[name] = earlier
		}
	}
	return now
}

// nodeWatch sends an ICMP echo request to every node with an agent each interval and
// tells which nodes have stopped answering (SilentNodes). The leader counts a silent
// node's agent dead at once, without waiting for memberlist's suspicion timeout: a
// crashed owner's VIPs move in a fraction of a second.
type nodeWatch struct {
	Client    client.Reader  // NodeAgents and Nodes, from the cache
	NS        netns.NsHandle // network namespace of the sockets (netns.None(): this process's)
	Interval  time.Duration
	DeadAfter time.Duration
	Log       logr.Logger
	// OnChange is called when a node falls silent or answers again.
	OnChange func()
	metrics  *metrics

	mu      sync.Mutex
	nodes   map[string]*EchoHistory
	byAddr  map[netip.Addr]string // node address -> node
	targets map[string]netip.Addr // node -> its address
	silent  map[string]time.Time  // the last verdict
	seq     uint16
}

// NeedLeaderElection: only the leader decides, so only it watches.
func (w *nodeWatch) NeedLeaderElection() bool { return true }

// Start watches until ctx is done. A family whose socket cannot be opened (no IPv6, or
// neither a ping socket nor CAP_NET_RAW) is not watched, which the log says once: its
// nodes are left to memberlist and heartbeats.
func (w *nodeWatch) Start(ctx context.Context) error {
	w.mu.Lock()
	w.nodes, w.byAddr, w.targets, w.silent = map[string]*EchoHistory{}, map[netip.Addr]string{}, map[string]netip.Addr{}, map[string]time.Time{}
	w.mu.Unlock()
	v4, err4 := echo.Listen(w.NS, false, w.replied)
	v6, err6 := echo.Listen(w.NS, true, w.replied)
	if err := errors.Join(err4, err6); err != nil {
		w.Log.Error(err, "cannot send echo requests to the nodes of a family; a crash there is noticed by memberlist alone")
	}
	defer closeAll(v4, v6)
	go wait.UntilWithContext(ctx, w.readTargets, nodeWatchTargetsEvery)
	wait.UntilWithContext(ctx, func(context.Context) { w.tick(v4, v6, time.Now()) }, w.Interval)
	return nil
}

func closeAll(socks ...*echo.Socket) {
	for _, s := range socks {
		if s != nil {
			_ = s.Close()
		}
	}
}

// readTargets lists the nodes to watch: every node with an agent, at the address its
// memberlist member advertises (the node's own, agents run on the host network), else the
// Node's InternalIP.
func (w *nodeWatch) readTargets(ctx context.Context) {
	var agents vigilv1.NodeAgentList
	var nodes corev1.NodeList
	if err := errors.Join(w.Client.List(ctx, &agents), w.Client.List(ctx, &nodes)); err != nil {
		w.Log.Error(err, "listing the nodes to watch")
		return
	}
	internal := map[string]netip.Addr{}
	for _, n := range nodes.Items {
		for _, a := range n.Status.Addresses {
			if ip, err := netip.ParseAddr(a.Address); err == nil && a.Type == corev1.NodeInternalIP {
				internal[n.Name] = ip
				break
			}
		}
	}
	targets := map[string]netip.Addr{}
	for _, a := range agents.Items {
		if host, _, err := net.SplitHostPort(a.Status.MemberlistAddress); err == nil {
			if ip, err := netip.ParseAddr(host); err == nil {
				targets[a.Name] = ip.Unmap()
				continue
			}
		}
		if ip, ok := internal[a.Name]; ok {
			targets[a.Name] = ip.Unmap()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.targets = targets
	w.byAddr = map[netip.Addr]string{}
	for name, ip := range targets {
		w.byAddr[ip] = name
		if w.nodes[name] == nil {
			w.nodes[name] = &EchoHistory{}
		}
	}
	maps.DeleteFunc(w.nodes, func(name string, _ *EchoHistory) bool { _, ok := targets[name]; return !ok })
}

// replied records a reply (the sockets' readers call it).
func (w *nodeWatch) replied(r echo.Reply) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h := w.nodes[w.byAddr[r.From]]; h != nil {
		h.Answered, h.Unanswered = r.At, h.Unanswered[:0]
	}
}

// tick judges the nodes, then sends the next round of requests.
func (w *nodeWatch) tick(v4, v6 *echo.Socket, now time.Time) {
	w.mu.Lock()
	histories := make(map[string]EchoHistory, len(w.nodes))
	for name, h := range w.nodes {
		histories[name] = *h
	}
	silent := KeepSilentSince(w.silent, SilentNodes(histories, now, w.Interval, w.DeadAfter))
	changed := !maps.EqualFunc(silent, w.silent, time.Time.Equal)
	fell, back := diffKeys(w.silent, silent)
	w.silent = silent
	w.seq++
	seq, targets := w.seq, maps.Clone(w.targets)
	w.mu.Unlock()

	for _, n := range fell {
		w.Log.Info("node stopped answering echo requests: its agent counts as dead", "node", n, "silentFor", now.Sub(silent[n]).Round(time.Millisecond))
	}
	for _, n := range back {
		w.Log.Info("node answers echo requests again", "node", n)
	}
	if changed {
		w.metrics.setSilent(len(silent))
		if w.OnChange != nil {
			w.OnChange()
		}
	}
	sent := time.Now()
	for name, ip := range targets {
		sock := v4
		if ip.Is6() {
			sock = v6
		}
		if sock == nil || sock.Send(ip, "", seq) != nil {
			continue // unsent requests count neither way
		}
		w.mu.Lock()
		if h := w.nodes[name]; h != nil {
			if len(h.Unanswered) == maxUnanswered {
				h.Unanswered = append(h.Unanswered[:0], h.Unanswered[1:]...)
			}
			h.Unanswered = append(h.Unanswered, sent)
		}
		w.mu.Unlock()
	}
}

// diffKeys lists the keys only in b (fell) and only in a (back).
func diffKeys(a, b map[string]time.Time) (onlyB, onlyA []string) {
	for k := range b {
		if _, ok := a[k]; !ok {
			onlyB = append(onlyB, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			onlyA = append(onlyA, k)
		}
	}
	return onlyB, onlyA
}

// Overlay returns members with every silent node's agent dead since its silence began
// (nil-safe: a nil watch changes nothing). AgentAlive then counts it dead unless its
// heartbeat was seen changing since: an agent that still writes to the API server is alive
// whatever this controller's echo requests say.
func (w *nodeWatch) Overlay(members map[string]membership.State) map[string]membership.State {
	if w == nil {
		return members
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.silent) == 0 {
		return members
	}
	out := make(map[string]membership.State, len(members)+len(w.silent))
	maps.Copy(out, members)
	for name, since := range w.silent {
		if m, ok := out[name]; ok && !m.Alive && m.Since.Before(since) {
			continue // memberlist knew first
		}
		out[name] = membership.State{Alive: false, Since: since}
	}
	return out
}
