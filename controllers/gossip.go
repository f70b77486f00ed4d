package controllers

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
)

// rejoinEvery is how often the leader looks for agents memberlist does not count alive
// (it joins them): a new agent, or one back from a partition.
const rejoinEvery = time.Second

// controllerMemberPrefix names the controller's memberlist member, apart from node names.
const controllerMemberPrefix = "vigil-controller/"

// gossipMember makes the leading controller a memberlist member, so that it learns of an agent's
// death first-hand, within a few hundred milliseconds.
type gossipMember struct {
	Client    client.Client
	Namespace string
	Options   membership.Options
	Advertise string
	Log       logr.Logger
	// OnChange is called when a member joins or dies.
	OnChange func()

	mu        sync.Mutex
	member    *membership.Member
	joined    time.Time // the first join that reached a peer
	gossiping []string  // agents with a memberlist address, as last listed
}

// NeedLeaderElection: only the leader is a member.
func (g *gossipMember) NeedLeaderElection() bool { return true }

// Start runs the member until ctx is done.
func (g *gossipMember) Start(ctx context.Context) error {
	keys, err := membership.EnsureKeys(ctx, g.Client, g.Namespace)
	if err != nil {
		return fmt.Errorf("memberlist key: %w", err)
	}
	host, _ := os.Hostname()
	m, err := membership.Start(controllerMemberPrefix+host, g.Options, g.Advertise, keys, g.Log, func(string, bool) { g.OnChange() })
	if err != nil {
		return err
	}
	// Follow key rotations (the Secret's keyring; the client reads Secrets uncached).
	go m.FollowKeys(ctx, membership.KeyPollInterval, membership.KeyReader(g.Client, g.Namespace))
	g.mu.Lock()
	g.member = m
	g.mu.Unlock()
	defer m.Leave()
	g.Log.Info("memberlist started", "address", m.Address())
	t := time.NewTicker(rejoinEvery)
	defer t.Stop()
	for {
		var agents vigilv1.NodeAgentList
		if err := g.Client.List(ctx, &agents); err == nil {
			peers := vigilv1.MemberlistPeers(agents.Items, "")
			joined, _ := m.JoinMissing(peers)
			gossiping := slices.Collect(maps.Keys(peers))
			g.mu.Lock()
			g.gossiping = gossiping
			if joined > 0 && g.joined.IsZero() {
				g.joined = time.Now()
			}
			g.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Members is memberlist's view of the agents (nil before the member started). A new
// leader learns it at once: joining one agent brings the list of the live ones, and an
// agent that gossips (its NodeAgent has a memberlist address) but is not on it a moment
// after the join is dead — memberlist does not tell a newcomer of deaths that happened
// before it joined, and waiting for its heartbeat would take the heartbeat timeout.
func (g *gossipMember) Members() map[string]membership.State {
	g.mu.Lock()
	m, joined, gossiping := g.member, g.joined, g.gossiping
	g.mu.Unlock()
	if m == nil {
		return nil
	}
	out := map[string]membership.State{}
	for name, s := range m.States() {
		if !strings.HasPrefix(name, controllerMemberPrefix) {
			out[name] = s
		}
	}
	return withUnseenDead(out, gossiping, joined, time.Now())
}

// joinSettle is how long after its first join the leader waits before it counts the
// gossiping agents it has not seen as dead: the join's state exchange has brought in the
// live ones by then.
const joinSettle = time.Second

// withUnseenDead marks the gossiping agents memberlist never listed as dead since the
// leader's join settled. Pure.
func withUnseenDead(members map[string]membership.State, gossiping []string, joined, now time.Time) map[string]membership.State {
	if joined.IsZero() || now.Sub(joined) < joinSettle {
		return members
	}
	for _, name := range gossiping {
		if _, seen := members[name]; !seen {
			members[name] = membership.State{Alive: false, Since: joined.Add(joinSettle)}
		}
	}
	return members
}
