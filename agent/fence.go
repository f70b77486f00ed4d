package agent

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/chans"
	"vigil.dev/vigil/internal/membership"
)

const (
	// apiCheckEvery is how often the agent reads from the API server to know it answers;
	// apiCheckIsolated how often while it sees no majority of its peers (then every
	// fraction of a second counts).
	apiCheckEvery    = time.Second
	apiCheckIsolated = 200 * time.Millisecond
	// apiCheckTimeout bounds one read.
	apiCheckTimeout = 500 * time.Millisecond
	// fenceCheckEvery is how often isolation is judged.
	fenceCheckEvery = 100 * time.Millisecond
	// peerForgetAfter is how long a peer that neither memberlist nor its heartbeat shows
	// alive still counts in the majority: a node cut off from the others must keep counting
	// them (or it would find itself a majority of one), but a NodeAgent left by a node that
	// is gone for good must stop counting at some point.
	peerForgetAfter = 10 * time.Minute
	// controllerMemberPrefix names the controller's memberlist member.
	controllerMemberPrefix = "vigil-controller/"
)

// fenceWatch tells whether the node is isolated: it reaches neither the API server nor a
// majority of its peers. The isolated side of a partition releases its VIPs, because the
// other side elects new owners for them.
type fenceWatch struct {
	reader  client.Reader // the API server itself
	cache   client.Reader // NodeAgents
	node    string
	after   time.Duration // --fence-after
	gossip  *gossip
	metrics *metrics
	log     logr.Logger
	// onChange is called when isolation starts or ends.
	onChange func(ctx context.Context, isolated bool)

	mu            sync.Mutex
	apiOK         time.Time // when the last successful read of the API server ended
	heard         time.Time // when the last watch event arrived from the API server
	apiFailing    bool      // the last read failed
	minoritySince time.Time // zero while a majority is seen
	gossiping     bool      // memberlist runs here (else there is no majority to see)
	majoritySince time.Time // when the current run of majority began
	isolated      bool
	heartbeats    map[string]heartbeatSeen
	kick          chan struct{}   // read the API server now
	lastPing      time.Time       // the last direct check of the peers (judge's goroutine only)
	pinged        map[string]bool // its answers
	spot          int             // the peer the next spot check pings
	lost          map[string]bool // the peers unreachable at the last look (doubtful)
}

// heartbeatSeen is when this agent last saw a peer's heartbeat change (its own clock).
type heartbeatSeen struct {
	value string
	at    time.Time
}

// state is the fence's view for a decision: majority reached and for how long, how long
// the API server has not answered, isolated.
func (f *fenceWatch) state() (majority bool, majorityFor, apiDown time.Duration, isolated bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if f.minoritySince.IsZero() && !f.majoritySince.IsZero() {
		majorityFor = now.Sub(f.majoritySince)
	}
	return f.minoritySince.IsZero(), majorityFor, f.apiDown(now), f.isolated
}

// apiDown is how long the API server has not been heard from: 0 while reads succeed;
// after a failed read, since the last successful read or the last watch event, whichever
// came later. A watch event is the API server talking: an overloaded one answers a read
// after the check's timeout yet still streams events, and taking it for gone (with
// memberlist starved on the same busy node) fenced nodes that were not cut off at all —
// 32 times in one 1000-VIP run on 20 agents. f.mu is held.
func (f *fenceWatch) apiDown(now time.Time) time.Duration {
	if !f.apiFailing {
		return 0
	}
	last := f.apiOK
	if f.heard.After(last) {
		last = f.heard
	}
	return now.Sub(last)
}

// heardFromAPI is a predicate that records each watch event's arrival (see apiDown) and
// lets every event through.
func (f *fenceWatch) heardFromAPI() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(client.Object) bool {
		f.mu.Lock()
		f.heard = time.Now()
		f.mu.Unlock()
		return true
	})
}

// heardWithin reports whether a watch event arrived less than d before now.
func (f *fenceWatch) heardWithin(d time.Duration, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return now.Sub(f.heard) < d
}

func (f *fenceWatch) run(ctx context.Context) {
	go f.watchAPI(ctx)
	wait.UntilWithContext(ctx, func(ctx context.Context) { f.judge(ctx, time.Now()) }, fenceCheckEvery)
}

// watchAPI reads the node's own NodeAgent from the API server once a second, and five
// times a second while the node runs memberlist and sees no majority of its peers (then a
// fraction of a second counts) — unless a watch event came within apiCheckIsolated: that
// is as fresh an answer as a read, and costs the API server nothing (in a 1000-VIP burst
// on 20 agents the reads were 40 a second, nearly all cut off by their timeout).
func (f *fenceWatch) watchAPI(ctx context.Context) {
	for {
		start := time.Now()
		var err error
		if !f.heardWithin(apiCheckIsolated, start) {
			rctx, cancel := context.WithTimeout(ctx, apiCheckTimeout)
			err = f.reader.Get(rctx, client.ObjectKey{Name: f.node}, nodeAgentMetadata())
			cancel()
		}
		ok := err == nil || client.IgnoreNotFound(err) == nil
		f.mu.Lock()
		switch {
		case ok:
			if f.apiFailing {
				f.log.Info("the API server answers again", "after", time.Since(f.apiOK))
			}
			f.apiOK, f.apiFailing = time.Now(), false
		case !f.apiFailing:
			f.apiFailing = true
			f.log.Error(err, "the API server does not answer")
		}
		// The fast pace only where a fence can follow: without memberlist (not started yet,
		// its key not there yet) a node never fences, and 50 agents starting together read
		// 250 times a second and overloaded the lab's API server until the controller lost
		// its Lease — and never wrote the memberlist key.
		every := apiCheckEvery
		if f.gossiping && !f.minoritySince.IsZero() {
			every = apiCheckIsolated
		}
		f.mu.Unlock()
		f.metrics.setAPIReachable(ok)
		select { // jittered: the agents of every node must not read in step
		case <-ctx.Done():
			return
		case <-f.kick:
		case <-time.After(wait.Jitter(every, 0.2) - time.Since(start)):
		}
	}
}

// nodeAgentMetadata is what the API check reads: the NodeAgent's metadata only. The check
// needs an answer, not the report: read whole when each NodeAgent still listed every VIP
// (about 250 KB with 1000 VIPs), it was 19,313 reads of that object by 20 agents in one
// 1000-VIP scale run.
func nodeAgentMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(vigilv1.GroupVersion.WithKind("NodeAgent"))
	return m
}

// judge recomputes majority and isolation and reports a change of isolation.
func (f *fenceWatch) judge(ctx context.Context, now time.Time) {
	var agents vigilv1.NodeAgentList
	_ = f.cache.List(ctx, &agents) // the cache answers from memory, also in an API outage
	members, reachable := f.gossip.states(), f.gossip.reachable()
	if f.doubtful(agents.Items, reachable, now) {
		// The API server does not answer, or a peer seems lost: ask every peer directly
		// rather than wait for memberlist's probes to come round.
		f.pinged, f.lastPing = f.gossip.pingAll(vigilv1.MemberlistPeers(agents.Items, f.node)), now
		f.kickAPICheck() // and is the API server there? Ask now, not at the next tick.
	}
	if f.pinged != nil && now.Sub(f.lastPing) < 2*apiCheckIsolated {
		reachable = f.pinged // the freshest word until the next direct check
	}
	f.mu.Lock()
	f.observeHeartbeats(agents.Items, now)
	majority := Majority(f.node, agents.Items, members, reachable, f.heartbeats, now)
	lost := !majority && f.minoritySince.IsZero()
	switch {
	case majority && (!f.minoritySince.IsZero() || f.majoritySince.IsZero()):
		f.minoritySince, f.majoritySince = time.Time{}, now
	case lost:
		f.minoritySince = now
	}
	f.gossiping = members != nil
	isolated := Isolated(members != nil, f.minoritySince, f.apiDown(now), now, f.after)
	changed := isolated != f.isolated
	f.isolated = isolated
	f.mu.Unlock()
	if lost {
		f.log.Info("no majority of the peers reachable", "reachable", countTrue(reachable))
		f.kickAPICheck()
	}
	if changed {
		f.metrics.setFenced(isolated)
		f.onChange(ctx, isolated)
	}
}

// kickAPICheck makes the API server be read now.
func (f *fenceWatch) kickAPICheck() { chans.TrySend(f.kick, struct{}{}) }

// doubtful reports whether reachability needs a direct check of every peer, at most once
// per apiCheckIsolated: the API server does not answer, memberlist has lost a peer since
// the last look (NewlyLost), or the spot check — one reachable peer pinged per
// apiCheckIsolated, in turn — found one silent. (memberlist
// exposes no suspicion, and a node cut off from the others suspects them slowly: Lifeguard
// takes the silence for its own slowness and stretches its probes.)
func (f *fenceWatch) doubtful(agents []vigilv1.NodeAgent, reachable map[string]bool, now time.Time) bool {
	if reachable == nil || now.Sub(f.lastPing) < apiCheckIsolated {
		return false
	}
	f.mu.Lock()
	apiDown := f.apiFailing
	f.mu.Unlock()
	peers := vigilv1.MemberlistPeers(agents, f.node)
	names := slices.Sorted(maps.Keys(peers))
	lost := NewlyLost(names, reachable, f.lost)
	f.lost = map[string]bool{}
	for _, name := range names {
		if !reachable[name] {
			f.lost[name] = true
		}
	}
	if lost {
		return true
	}
	// The spot check goes round the peers memberlist reaches: one it has lost is known.
	names = slices.DeleteFunc(names, func(name string) bool { return f.lost[name] })
	if apiDown || len(names) == 0 {
		return apiDown
	}
	f.spot = (f.spot + 1) % len(names)
	name := names[f.spot]
	f.lastPing = now
	return !f.gossip.pingAll(map[string]string{name: peers[name]})[name]
}

// NewlyLost reports whether a peer is unreachable now that was not at the last look. A peer
// long gone (a node shut down for maintenance keeps its NodeAgent) is no news: asking every
// peer and the API server again five times a second for as long as it stays down cost
// each agent 5 API reads a second — 250 for 50 nodes — while one node was down. Pure.
func NewlyLost(peers []string, reachable, lostBefore map[string]bool) bool {
	for _, name := range peers {
		if !reachable[name] && !lostBefore[name] {
			return true
		}
	}
	return false
}

// observeHeartbeats records, on this agent's clock, when each peer's heartbeat changed.
// f.mu is held.
func (f *fenceWatch) observeHeartbeats(agents []vigilv1.NodeAgent, now time.Time) {
	if f.heartbeats == nil {
		f.heartbeats = map[string]heartbeatSeen{}
	}
	for i := range agents {
		v := agents[i].Status.HeartbeatTime.String()
		if seen, ok := f.heartbeats[agents[i].Name]; !ok || seen.value != v {
			f.heartbeats[agents[i].Name] = heartbeatSeen{value: v, at: now}
		}
	}
}

// Majority reports whether node reaches more than half of its plausibly alive peers,
// itself included. A peer counts when it runs memberlist (its NodeAgent has a memberlist
// address: a peer that cannot gossip cannot be seen either way) and it is plausibly alive:
// memberlist shows it alive, or showed it dying less than peerForgetAfter ago, or this
// agent saw its heartbeat change less than peerForgetAfter ago. It is reached when
// memberlist counts it alive and does not suspect it (reachable). Without memberlist
// (members nil) there is no majority to see.
func Majority(node string, agents []vigilv1.NodeAgent, members map[string]membership.State, reachable map[string]bool,
	heartbeats map[string]heartbeatSeen, now time.Time) bool {
	if members == nil {
		return false
	}
	alive, counted := 1, 1 // this node
	for i := range agents {
		a := &agents[i]
		if a.Name == node || a.Status.MemberlistAddress == "" {
			continue
		}
		m, known := members[a.Name]
		plausible := (known && (m.Alive || now.Sub(m.Since) < peerForgetAfter)) ||
			now.Sub(heartbeats[a.Name].at) < peerForgetAfter
		if !plausible {
			continue
		}
		counted++
		if reachable[a.Name] {
			alive++
		}
	}
	return 2*alive > counted
}

// Isolated decides fencing: the node runs memberlist and has seen no majority of its peers
// for fenceAfter, and the API server has not answered for as long. Both conditions are
// evidence, never an absence of it: a node without memberlist cannot tell an outage of the
// API server (when no other node can take a VIP over either) from its own isolation, so it
// never fences — an API outage of any length cannot make it drop a VIP. A node that
// reaches the API server, or a majority, keeps serving.
func Isolated(memberlist bool, minoritySince time.Time, apiDown time.Duration, now time.Time, fenceAfter time.Duration) bool {
	return memberlist && !minoritySince.IsZero() && now.Sub(minoritySince) >= fenceAfter && apiDown >= fenceAfter
}

// controllerAlive reports whether memberlist shows a controller (the leader) alive.
func controllerAlive(members map[string]membership.State) bool {
	for name, m := range members {
		if strings.HasPrefix(name, controllerMemberPrefix) && m.Alive {
			return true
		}
	}
	return false
}

// onIsolation is the fence's callback: it records the change and wakes the sync.
func (s *nodeSync) onIsolation(log logr.Logger, poke func()) func(context.Context, bool) {
	return func(ctx context.Context, isolated bool) {
		if isolated {
			log.Info("isolated: neither the API server nor a majority of peers reachable; releasing every VIP", "after", s.fence.after)
			s.agentEvent(ctx, corev1.EventTypeWarning, "Fenced", "Fence",
				"%s reached neither the API server nor a majority of its peers for %v and released every VIP", s.node, s.fence.after)
		} else {
			log.Info("reachable again; resuming")
			s.agentEvent(ctx, corev1.EventTypeNormal, "Unfenced", "Fence", "%s reaches the API server or a majority of its peers again", s.node)
		}
		poke()
	}
}

func countTrue(m map[string]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}
