package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
)

// rejoinEvery is how often an agent looks for peers memberlist has lost (a restarted
// agent's new incarnation, a healed partition): memberlist itself never rejoins a node it
// declared dead.
const rejoinEvery = 2 * time.Second

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
	// onFailure is told when memberlist cannot start, once per distinct error.
	onFailure func(err error)

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

// startRetry is how starting memberlist is retried (the key Secret missing, the port
// taken): each second at first, at most every 30 s once it keeps failing.
func startRetry() wait.Backoff {
	return wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.2, Steps: math.MaxInt32, Cap: 30 * time.Second}
}

// run starts the member, retrying with a jittered, capped backoff (N agents restarted
// together must not hit the API server in lockstep), and then rejoins lost peers.
func (g *gossip) run(ctx context.Context) {
	backoff := startRetry()
	for g.get() == nil {
		err := g.start(ctx)
		if err == nil {
			break
		}
		g.mu.Lock()
		changed := g.startErr == nil || g.startErr.Error() != err.Error()
		g.startErr = err
		g.mu.Unlock()
		if changed {
			// An error, not a quiet retry: without memberlist a dead node is noticed only by
			// its heartbeat (seconds, not milliseconds), and the agent is not Ready.
			g.log.Error(err, "memberlist cannot start; failover falls back on API heartbeats until it does")
			if g.onFailure != nil {
				g.onFailure(err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff.Step()):
		}
	}
	g.mu.Lock()
	g.startErr = nil
	g.mu.Unlock()
	// Rejoin lost peers every rejoinEvery, jittered so that agents restarted together do
	// not list the NodeAgents in step.
	wait.JitterUntilWithContext(ctx, g.join, rejoinEvery, 0.2, true)
}

func (g *gossip) start(ctx context.Context) error {
	keys, err := membership.ReadKeys(ctx, g.reader, g.opts.Namespace)
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
	m, err := membership.Start(g.node, g.opts.Memberlist, advertise, keys, g.log, func(string, bool) { g.onChange() })
	if err != nil {
		return err
	}
	// Follow key rotations (the Secret's keyring) for as long as the agent runs.
	go m.FollowKeys(ctx, membership.KeyPollInterval, membership.KeyReader(g.reader, g.opts.Namespace))
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

// reachable lists the members memberlist counts alive and does not suspect; nil before
// memberlist runs.
func (g *gossip) reachable() map[string]bool {
	if m := g.get(); m != nil {
		return m.Reachable()
	}
	return nil
}

// pingAll pings the peers (name -> host:port) directly; nil before memberlist runs.
func (g *gossip) pingAll(peers map[string]string) map[string]bool {
	if m := g.get(); m != nil {
		return m.PingAll(peers)
	}
	return nil
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
	if _, err := m.JoinMissing(vigilv1.MemberlistPeers(agents.Items, g.node)); err != nil {
		g.log.V(1).Info("some memberlist peers did not answer the join", "reason", err.Error())
	}
}

func (g *gossip) leave() {
	if m := g.get(); m != nil {
		m.Leave()
	}
}
