package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
)

// gossip runs the agent's memberlist member: it starts once the key Secret can be read,
// publishes its address in the NodeAgent, and (re)joins the peers found in the other
// NodeAgents. Without it the agent still works, on API heartbeats.
type gossip struct {
	client   client.Client // cached, for NodeAgents
	reader   client.Reader // uncached, for the Secret and the Node
	node     string
	opts     Options
	report   *reporter
	log      logr.Logger
	onChange func()

	mu       sync.Mutex
	member   *membership.Member
	startErr error // why memberlist has not started yet
}

// ready is the agent's memberlist readiness: running, or turned off by flag.
func (g *gossip) ready() error {
	if g.opts.Memberlist.Bind == "" {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.member != nil {
		return nil
	}
	if g.startErr != nil {
		return fmt.Errorf("memberlist not running: %w", g.startErr)
	}
	return errors.New("memberlist not started yet")
}

func (g *gossip) run(ctx context.Context) {
	for g.get() == nil {
		if err := g.start(ctx); err != nil {
			g.mu.Lock()
			g.startErr = err
			g.mu.Unlock()
			g.log.Info("memberlist not started yet, retrying", "reason", err.Error())
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		g.join(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *gossip) start(ctx context.Context) error {
	key, err := membership.ReadKey(ctx, g.reader, g.opts.Namespace)
	if err != nil {
		return err
	}
	advertise := ""
	var node corev1.Node
	if err := g.reader.Get(ctx, client.ObjectKey{Name: g.node}, &node); err == nil {
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && net.ParseIP(a.Address).To4() != nil {
				advertise = a.Address
				break
			}
		}
	}
	m, err := membership.Start(g.node, g.opts.Memberlist, advertise, key, g.log, func(string, bool) { g.onChange() })
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.member = m
	g.mu.Unlock()
	g.report.SetMemberlistAddress(m.Address())
	g.log.Info("memberlist started", "address", m.Address())
	return nil
}

func (g *gossip) get() *membership.Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.member
}

// states is memberlist's view of the members, nil before memberlist runs.
func (g *gossip) states() map[string]membership.State {
	if m := g.get(); m != nil {
		return m.States()
	}
	return nil
}

// join contacts the peers that memberlist does not count alive.
func (g *gossip) join(ctx context.Context) {
	m := g.get()
	var agents vigilv1.NodeAgentList
	if err := g.client.List(ctx, &agents); err != nil {
		return
	}
	alive := m.Alive()
	var peers []string
	for _, a := range agents.Items {
		if a.Name != g.node && a.Status.MemberlistAddress != "" && !slices.Contains(alive, a.Name) {
			peers = append(peers, a.Status.MemberlistAddress)
		}
	}
	if _, err := m.Join(peers); err != nil {
		g.log.V(1).Info("joining memberlist peers", "peers", peers, "error", err.Error())
	}
}

// majority reports whether this member sees more than half of the agents it knows of
// (itself included) alive. Without memberlist it is false.
func (g *gossip) majority(ctx context.Context) bool {
	m := g.get()
	if m == nil {
		return false
	}
	var agents vigilv1.NodeAgentList
	if err := g.client.List(ctx, &agents); err != nil || len(agents.Items) == 0 {
		return false
	}
	alive := m.Alive()
	n := 0
	for _, a := range agents.Items {
		if slices.Contains(alive, a.Name) {
			n++
		}
	}
	return 2*n > len(agents.Items)
}

func (g *gossip) leave() {
	if m := g.get(); m != nil {
		m.Leave(500 * time.Millisecond)
	}
}
