package controllers

import (
	"context"
	"fmt"
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

// controllerMemberPrefix names the controller's memberlist member, apart from node names.
const controllerMemberPrefix = "vigil-controller/"

// Gossip makes the leading controller a memberlist member, so that it learns of an agent's
// death first-hand, within a few hundred milliseconds.
type Gossip struct {
	Client    client.Client
	Namespace string
	Options   membership.Options
	Advertise string
	Log       logr.Logger
	// OnChange is called when a member joins or dies.
	OnChange func()

	mu     sync.Mutex
	member *membership.Member
}

// NeedLeaderElection: only the leader is a member.
func (g *Gossip) NeedLeaderElection() bool { return true }

// Start runs the member until ctx is done.
func (g *Gossip) Start(ctx context.Context) error {
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
	defer m.Leave(500 * time.Millisecond)
	g.Log.Info("memberlist started", "address", m.Address())
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		var agents vigilv1.NodeAgentList
		if err := g.Client.List(ctx, &agents); err == nil {
			alive := m.Alive()
			var peers []string
			for _, a := range agents.Items {
				if a.Status.MemberlistAddress != "" && !slices.Contains(alive, a.Name) {
					peers = append(peers, a.Status.MemberlistAddress)
				}
			}
			_, _ = m.Join(peers)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Members is memberlist's view of the agents (nil before the member started).
func (g *Gossip) Members() map[string]MemberState {
	g.mu.Lock()
	m := g.member
	g.mu.Unlock()
	if m == nil {
		return nil
	}
	out := map[string]MemberState{}
	for name, s := range m.States() {
		if !strings.HasPrefix(name, controllerMemberPrefix) {
			out[name] = MemberState{Alive: s.Alive, Since: s.Since}
		}
	}
	return out
}
