package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"vigil.dev/vigil/agent/address"
	"vigil.dev/vigil/agent/announce"
	"vigil.dev/vigil/agent/dataplane"
	"vigil.dev/vigil/agent/handover"
	"vigil.dev/vigil/agent/probe"
	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/chans"
	"vigil.dev/vigil/internal/health"
	"vigil.dev/vigil/internal/membership"
	"vigil.dev/vigil/internal/scheme"
	"vigil.dev/vigil/internal/version"
)

// renewalsPerLifetime: an address is renewed this often within its lifetime, so that three
// renewals in a row can come late (a busy node) before it lapses.
const renewalsPerLifetime = 4

// Run runs the agent until ctx is done, then hands its VIPs over (make before break) and
// releases whatever is left.
func Run(ctx context.Context, cfg *rest.Config, o Options, logger logr.Logger) error {
	o = o.withBindAddress() // --bind-address: the listeners on the node's address (listen.go)
	logger = logger.WithValues("node", o.NodeName)
	addrs, err := address.NewNetlink(netns.None())
	if err != nil {
		return err
	}
	defer addrs.Close()
	addrs.Lifetime = o.AddressLifetime
	ann := announce.NewRaw(netns.None())
	defer func() { _ = ann.Close() }()
	dp := dataplane.New(addrs, ann, logger.WithName("dataplane"))
	gateway, err := probe.NetlinkGateway(netns.None())
	if err != nil {
		return err
	}
	fwd, err := newForwarder(o.HandoverDrain, logger)
	if err != nil {
		return err
	}
	if fwd != nil {
		defer fwd.Close()
	}
	if err := registerMemberlistMetrics(&o); err != nil {
		return err
	}
	mgr, err := newManagerWhenReachable(ctx, cfg, &o, logger)
	if err != nil {
		return err
	}
	s, err := newNodeSync(mgr, &o, addrs, dp, fwd, logger)
	if err != nil {
		return err
	}
	s.asker = ann
	s.probes = probe.NewManager(probe.Env{NS: netns.None(), Gateway: gateway}, logger.WithName("probe"), s.healthChanged)
	defer s.probes.Stop()
	if s.metrics, err = registerMetrics(s.probes, ann); err != nil {
		return err
	}
	s.fence.metrics = s.metrics
	if err := s.SetupWithManager(mgr); err != nil {
		return err
	}
	runErr := s.run(ctx, mgr, &o, logger)
	// Whatever is left (no handover possible, or it timed out) is released, so that no
	// stale VIP stays on this node.
	releaseErr := dp.ReleaseAll()
	if fwd != nil {
		releaseErr = errors.Join(releaseErr, fwd.Reset())
	}
	if runErr != nil {
		runErr = fmt.Errorf("running agent: %w", runErr)
	}
	if releaseErr != nil {
		releaseErr = fmt.Errorf("releasing VIPs on exit: %w", releaseErr)
	}
	return errors.Join(runErr, releaseErr)
}

// managerRetry is how making the manager is retried during an API outage: every half
// second at first, at most every 10 s, so that an agent notices the API server's return
// within seconds.
func managerRetry() wait.Backoff {
	return wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: math.MaxInt32, Cap: 10 * time.Second}
}

// newManagerWhenReachable makes the manager, retrying while the API server does not answer
// (making one asks the API server): an agent started during an API outage must not exit
// and wait out a CrashLoopBackOff once the API server is back. The retries back off,
// jittered, so that the agents of every node do not call in step.
func newManagerWhenReachable(ctx context.Context, cfg *rest.Config, o *Options, logger logr.Logger) (ctrl.Manager, error) {
	backoff := managerRetry()
	for {
		mgr, err := newManager(cfg, o, logger)
		if err == nil {
			return mgr, nil
		}
		logger.Error(err, "cannot reach the API server yet; retrying")
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff.Step()):
		}
	}
}

// newManager makes the agent's controller-runtime manager. Its cache holds only what the
// agent needs and its RBAC grants: its own Node, and no Secrets (the memberlist key is
// read directly, in Vigil's namespace only).
func newManager(cfg *rest.Config, o *Options, logger logr.Logger) (ctrl.Manager, error) {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme.New(),
		Logger:                 logger,
		Metrics:                o.Metrics.ServerOptions(),
		HealthProbeBindAddress: o.HealthProbeBindAddress,
		PprofBindAddress:       o.PprofBindAddress,
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Node{}: {Field: fields.OneTermEqualSelector("metadata.name", o.NodeName)},
		}},
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
	})
	if err != nil {
		return nil, fmt.Errorf("creating agent manager: %w", err)
	}
	return mgr, nil
}

// newNodeSync assembles the sync with its reporter, gossip and fence.
func newNodeSync(mgr ctrl.Manager, o *Options, links nodeLinks, dp *dataplane.Dataplane, fwd *handover.NFT, logger logr.Logger) (*nodeSync, error) {
	rep := newReporter(mgr.GetClient(), o.NodeName, clock.RealClock{})
	s := &nodeSync{client: mgr.GetClient(), reader: mgr.GetAPIReader(), node: o.NodeName, clock: clock.RealClock{},
		links: links, dp: dp, report: rep, drain: o.HandoverDrain, events: mgr.GetEventRecorder("vigil-agent"),
		wake: make(chan event.GenericEvent, 1), bindErrors: map[types.UID]bindError{}, verdicts: map[string]bool{}}
	if fwd != nil { // a nil *NFT in the interface field would not compare equal to nil
		s.fwd = fwd
	}
	s.gossip = &gossip{client: mgr.GetClient(), reader: mgr.GetAPIReader(), node: o.NodeName, opts: *o, report: rep,
		log: logger.WithName("gossip"), onChange: s.poke}
	s.gossip.onFailure = func(err error) {
		// The first failure comes before the cache has started: wait for it, or the Event
		// (whose object is read from the cache) would be lost.
		go func() {
			if mgr.GetCache().WaitForCacheSync(context.Background()) {
				s.agentEvent(context.Background(), corev1.EventTypeWarning, "MemberlistFailed", "Gossip",
					"%s: memberlist cannot start (failover falls back on API heartbeats): %v", s.node, err)
			}
		}()
	}
	s.fence = &fenceWatch{reader: mgr.GetAPIReader(), cache: mgr.GetClient(), node: o.NodeName, after: o.FenceAfter,
		gossip: s.gossip, log: logger.WithName("fence"), kick: make(chan struct{}, 1)}
	s.fence.onChange = s.onIsolation(logger, s.poke)
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("cache", health.CacheSynced(mgr.GetCache())); err != nil {
		return nil, fmt.Errorf("adding ready check: %w", err)
	}
	if err := mgr.AddReadyzCheck("memberlist", health.Func(s.gossip.ready)); err != nil {
		return nil, fmt.Errorf("adding ready check: %w", err)
	}
	return s, nil
}

// SetupWithManager registers the sync: every event maps to one request.
func (s *nodeSync) SetupWithManager(mgr ctrl.Manager) error {
	one := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{syncRequest}
	})
	ownNode := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == s.node })
	// Other NodeAgents matter while a hold waits for the new owner's report, and when a
	// node reports another epoch bound (a standby's takeover, which an owner defers to).
	otherAgents := predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return s.holding() || boundEpochs(e.Object) != "" },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return s.holding() || boundEpochs(e.ObjectOld) != boundEpochs(e.ObjectNew)
		},
		DeleteFunc:  func(event.DeleteEvent) bool { return s.holding() },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	heard := s.fence.heardFromAPI() // first: predicates stop at the first that says no
	err := ctrl.NewControllerManagedBy(mgr).
		Named("agent").
		Watches(&vigilv1.VirtualIP{}, one, builder.WithPredicates(heard)).
		Watches(&corev1.Node{}, one, builder.WithPredicates(heard, ownNode)).
		Watches(&vigilv1.NodeAgent{}, one, builder.WithPredicates(heard, otherAgents)).
		WatchesRawSource(source.Channel(s.wake, one)).
		Complete(s)
	if err != nil {
		return fmt.Errorf("setting up agent: %w", err)
	}
	return nil
}

// boundEpochs summarises which VIPs a NodeAgent reports bound, at which epoch.
func boundEpochs(o client.Object) string {
	na, ok := o.(*vigilv1.NodeAgent)
	if !ok {
		return ""
	}
	var b strings.Builder
	for _, r := range na.Status.VIPs {
		if r.BoundEpoch != 0 {
			fmt.Fprintf(&b, "%s@%d ", r.Name, r.BoundEpoch)
		}
	}
	return b.String()
}

// poke wakes the sync without blocking.
func (s *nodeSync) poke() { chans.TrySend(s.wake, event.GenericEvent{Object: &vigilv1.NodeAgent{}}) }

// run starts the manager and the agent's loops, and on ctx's end hands the VIPs over
// before stopping them.
func (s *nodeSync) run(ctx context.Context, mgr ctrl.Manager, o *Options, logger logr.Logger) error {
	mgrCtx, stopMgr := context.WithCancel(context.Background())
	defer stopMgr()
	go s.report.Run(mgrCtx, o.HeartbeatInterval)
	if o.Memberlist.Bind != "" {
		go s.gossip.run(mgrCtx)
		defer s.gossip.leave()
	}
	go s.fence.run(mgrCtx)
	if err := s.watchLinks(mgrCtx); err != nil {
		logger.Error(err, "cannot watch the node's links; a lost carrier is noticed at the next resync")
	}
	if o.AddressLifetime > 0 {
		go s.dp.RenewEvery(mgrCtx, o.AddressLifetime/renewalsPerLifetime, s.metrics.observeRenewal)
	}
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(mgrCtx) }()
	select {
	case err := <-mgrDone:
		return err
	case <-ctx.Done():
		s.handOver(mgrCtx, o.HandoverTimeout, logger)
		stopMgr()
		return <-mgrDone
	}
}

// newForwarder opens the nftables forwarder of planned moves and clears what a previous
// run left. A kernel without nftables costs only the forwarding: planned moves then reset
// the connections open at the switch, which is logged.
func newForwarder(drain time.Duration, log logr.Logger) (*handover.NFT, error) {
	if drain == 0 {
		return nil, nil
	}
	fwd, err := handover.NewNFT(netns.None())
	if err != nil {
		return nil, err
	}
	if err := fwd.Reset(); err != nil {
		fwd.Close()
		log.Error(err, "nftables unavailable: planned moves will not keep the connections open at the switch")
		return nil, nil
	}
	return fwd, nil
}

// registerMetrics registers the build, agent, probe and announcement metrics on
// controller-runtime's registry.
func registerMetrics(probes *probe.Manager, ann *announce.Raw) (*metrics, error) {
	m := newMetrics()
	for _, c := range append(m.collectors(), probes, ann, version.NewCollector()) {
		if err := ctrlmetrics.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	return m, nil
}

// registerMemberlistMetrics registers memberlist's metrics when it is on; the member,
// started later, reports into them.
func registerMemberlistMetrics(o *Options) error {
	if o.Memberlist.Bind == "" {
		return nil
	}
	o.Memberlist.Metrics = membership.NewMetrics()
	o.Memberlist.Metrics.SetUp(false)
	if err := o.Memberlist.Metrics.Register(ctrlmetrics.Registry); err != nil {
		return fmt.Errorf("registering memberlist metrics: %w", err)
	}
	return nil
}
