package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
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
	"vigil.dev/vigil/internal/health"
	"vigil.dev/vigil/internal/membership"
	"vigil.dev/vigil/internal/version"
)

// +kubebuilder:rbac:groups=vigil.dev,resources=virtualips,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// Events about cluster-scoped objects (VirtualIPs, NodeAgents) live in the default namespace.
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch,namespace=default
// The metrics endpoint authenticates and authorizes its scrapers (--metrics-secure).
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

const (
	// resyncPeriod bounds how long drift (an address removed by hand, a link that lost it)
	// can last before the agent repairs it.
	resyncPeriod = 10 * time.Second
	// holdTimeout bounds make-before-break: a VIP that moved away stays bound here until
	// its new owner reports it bound, or this long.
	holdTimeout = 3 * time.Second
)

// hold is a VIP that moved away but stays bound here, silently (no announcements), so that
// the connections this node accepted can finish: until the new owner reports it bound
// (or holdTimeout), then for the drain period, while the new owner forwards them here.
type hold struct {
	until     time.Time
	confirmed bool // the new owner reported it bound; until counts the drain
}

// forward is a VIP this node took over in a planned move: segments of the old owner's
// connections go back to it until the time given.
type forward struct {
	rule  handover.Rule
	until time.Time
}

// ToVIP converts a VirtualIP to the data plane's view.
func ToVIP(v *vigilv1.VirtualIP) (dataplane.VIP, bool) {
	addr, err := netip.ParseAddr(v.Spec.Address)
	if err != nil {
		return dataplane.VIP{}, false // the schema admits only IP literals
	}
	return dataplane.VIP{
		Name:      v.Name,
		Address:   addr,
		PrefixLen: v.Spec.EffectivePrefixLength(),
		Interface: v.Spec.Interface,
		Announce: dataplane.Announce{
			Count:    int(v.Spec.Announce.Count),
			Interval: v.Spec.Announce.Interval.Duration,
			Refresh:  v.Spec.Announce.RefreshInterval.Duration,
		},
	}, true
}

// selects reports whether the VirtualIP's nodeSelector matches the node's labels.
func selects(v *vigilv1.VirtualIP, nodeLabels map[string]string) bool {
	if v.Spec.NodeSelector == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(v.Spec.NodeSelector)
	return err == nil && s.Matches(labels.Set(nodeLabels))
}

// nodeSync makes the node hold exactly the VIPs it owns, runs the health checks of the VIPs
// it could hold and reports its eligibility. Every event maps to the same request, so
// bursts of changes collapse into one sync.
type nodeSync struct {
	client client.Client
	node   string
	clock  clock.PassiveClock
	addrs  address.Manager
	dp     *dataplane.Dataplane
	probes *probe.Manager
	report *reporter
	gossip *gossip
	api    *apiWatch
	fence  time.Duration
	fwd    handover.Forwarder // nil: no forwarding (--handover-drain=0 or no nftables)
	drain  time.Duration      // --handover-drain
	// metrics and events tell operators what the agent does (nil: neither).
	metrics *metrics
	events  events.EventRecorder

	// reader reads the API server directly, bypassing the cache.
	reader client.Reader

	mu     sync.Mutex
	fenced bool // isolated: neither the API server nor a memberlist majority reachable
	// stale: the node was fenced and has not read the VirtualIPs from the API server
	// since. Its cache may still show it as the owner of VIPs that moved meanwhile; one
	// direct read raises maxEpoch past those.
	stale    bool
	failures map[string]string

	verdictsMu sync.Mutex
	verdicts   map[string]bool // VIP -> last health verdict here, for Events on flips
	maxEpoch   map[string]int64
	bound      map[string]int64 // VIP -> epoch it is bound at here
	held       map[string]hold
	forwards   map[string]forward
	taken      map[string]int64 // VIP -> epoch whose dead owner this node took over from
}

var syncRequest = reconcile.Request{NamespacedName: types.NamespacedName{Name: "node"}}

func (s *nodeSync) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	var list vigilv1.VirtualIPList
	if err := s.client.List(ctx, &list); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing VirtualIPs: %w", err)
	}
	var node corev1.Node
	if err := s.client.Get(ctx, client.ObjectKey{Name: s.node}, &node); err != nil {
		return ctrl.Result{}, fmt.Errorf("reading Node %s: %w", s.node, err)
	}
	var agents vigilv1.NodeAgentList
	if err := s.client.List(ctx, &agents); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing NodeAgents: %w", err)
	}
	links, err := s.addrs.Links()
	if err != nil {
		return ctrl.Result{}, err
	}
	now := s.clock.Now()
	// During an API outage nobody can elect: take over the VIPs of dead owners when it is
	// safe (see Takeover).
	var takeover []string
	var takeoverAgain time.Duration
	if m := s.gossip.get(); m != nil && s.api.down(2*time.Second) {
		takeover, takeoverAgain = Takeover(s.node, list.Items, m.States(), s.gossip.majority(ctx), s.fence, now)
		for _, name := range takeover {
			ctrl.LoggerFrom(ctx).Info("API server unreachable: taking over a VIP whose owner died", "vip", name)
			s.vipEvent(ctx, name, corev1.EventTypeWarning, "TakenOver", "Takeover",
				"%s takes the address over during an API server outage: its owner died and no controller can elect", s.node)
		}
	}

	s.mu.Lock()
	stale := s.stale && !s.fenced
	s.mu.Unlock()
	if stale {
		var live vigilv1.VirtualIPList
		if err := s.reader.List(ctx, &live); err != nil {
			return ctrl.Result{}, fmt.Errorf("reading VirtualIPs after isolation: %w", err)
		}
		s.mu.Lock()
		for _, v := range live.Items {
			s.maxEpoch[v.Name] = max(s.maxEpoch[v.Name], v.Status.Epoch)
		}
		s.stale = false
		s.mu.Unlock()
	}

	s.mu.Lock()
	var desired []dataplane.VIP
	var reports []vigilv1.VIPEligibility
	epochs := map[string]int64{}
	seen := map[string]bool{}
	for i := range list.Items {
		v := &list.Items[i]
		dv, ok := ToVIP(v)
		if !ok {
			continue
		}
		seen[v.Name] = true
		iface, ierr := address.ResolveInterface(links, v.Spec.Interface, dv.Address)
		if selects(v, node.Labels) {
			s.probes.Set(v.Name, probe.Target{VIP: dv.Address, Interface: iface}, v.Spec.HealthChecks)
			h := s.probes.Health(v.Name)
			rep := vigilv1.VIPEligibility{Name: v.Name, Eligible: ierr == nil && h.Eligible, Reason: h.Reason, Interface: iface,
				HardwareAddress: hardwareAddr(links, iface)}
			if ierr != nil {
				rep.Reason = ierr.Error()
			}
			reports = append(reports, rep)
		} else {
			s.probes.Remove(v.Name)
		}
		// Fencing: never act on an older epoch than one already seen.
		if v.Status.Epoch < s.maxEpoch[v.Name] {
			continue
		}
		s.maxEpoch[v.Name] = v.Status.Epoch
		epochs[v.Name] = v.Status.Epoch
		if slices.Contains(takeover, v.Name) {
			s.taken[v.Name] = v.Status.Epoch
		}
		if e, ok := s.taken[v.Name]; ok && e != v.Status.Epoch {
			delete(s.taken, v.Name) // the controller has decided since
		}
		switch {
		case v.Status.Owner == s.node:
			desired = append(desired, dv)
			delete(s.held, v.Name)
			if _, ok := s.forwards[v.Name]; !ok && s.bound[v.Name] == 0 && s.fwd != nil {
				if to, ok := oldOwnerAddr(v, s.node, agents.Items, s.gossip.states()); ok {
					s.forwards[v.Name] = forward{
						rule:  handover.Rule{Interface: iface, VIP: dv.Address, To: to, Window: s.drain},
						until: now.Add(s.drain),
					}
				}
			}
		case hasKey(s.taken, v.Name):
			// Taken over during an API outage: kept until the controller publishes a new
			// decision (a new epoch), also after the API server is back.
			desired = append(desired, dv)
			delete(s.held, v.Name)
		case v.Status.Owner != "" && s.bound[v.Name] != 0:
			// Make before break: keep it until the new owner has bound it, then drain.
			h, ok := s.held[v.Name]
			if !ok {
				h = hold{until: now.Add(holdTimeout)}
			}
			if !h.confirmed && confirmed(agents.Items, v) {
				h = hold{until: now.Add(s.drain), confirmed: true}
			}
			s.held[v.Name] = h
			if now.Before(h.until) {
				dv.Quiet = true // the new owner announces it now
				desired = append(desired, dv)
			}
		default:
			delete(s.held, v.Name)
		}
	}
	for name, f := range s.forwards {
		if v := findVIP(list.Items, name); v == nil || v.Status.Owner != s.node || !now.Before(f.until) {
			delete(s.forwards, name)
		}
	}
	for _, name := range s.probes.VIPs() {
		if !seen[name] {
			s.probes.Remove(name)
			s.verdictsMu.Lock()
			delete(s.verdicts, name)
			s.verdictsMu.Unlock()
		}
	}
	for name := range s.held {
		if !slices.ContainsFunc(desired, func(d dataplane.VIP) bool { return d.Name == name }) {
			delete(s.held, name)
		}
	}
	if s.fenced {
		// The isolated side of a partition gives everything up: the other side will
		// elect new owners, and two nodes must not answer for one address.
		desired = nil
		s.held = map[string]hold{}
	}
	holding := len(s.held) > 0
	var rules []handover.Rule
	var forwardAgain time.Duration
	for _, f := range s.forwards {
		rules = append(rules, f.rule)
		if d := f.until.Sub(now); forwardAgain == 0 || d < forwardAgain {
			forwardAgain = d
		}
	}
	s.mu.Unlock()

	// Forwarding goes in before the new owner binds and announces: the old owner's
	// connections must never meet this node's kernel alone.
	if s.fwd != nil {
		if err := s.fwd.Sync(rules); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "cannot forward the old owner's connections; a planned move may reset them")
		}
	}
	results, syncErr := s.dp.Sync(desired)
	s.mu.Lock()
	s.bound = map[string]int64{}
	for name, r := range results {
		if r.Bound {
			s.bound[name] = epochs[name]
		}
	}
	for i := range reports {
		if list := findVIP(list.Items, reports[i].Name); list != nil && list.Status.Owner == s.node && results[reports[i].Name].Bound {
			reports[i].BoundEpoch = epochs[reports[i].Name]
		}
	}
	s.mu.Unlock()
	s.report.Set(reports)
	s.metrics.observeSync(results)
	s.metrics.observeReports(reports)
	s.logFailures(ctx, results)
	if syncErr != nil {
		return ctrl.Result{}, fmt.Errorf("syncing addresses: %w", syncErr)
	}
	switch {
	case holding:
		return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
	case forwardAgain > 0:
		return ctrl.Result{RequeueAfter: forwardAgain}, nil
	case takeoverAgain > 0:
		return ctrl.Result{RequeueAfter: takeoverAgain}, nil
	case s.api.down(2 * time.Second):
		return ctrl.Result{RequeueAfter: time.Second}, nil // watch for dead owners meanwhile
	}
	return ctrl.Result{RequeueAfter: resyncPeriod}, nil
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}

// hardwareAddr is the link-layer address of the interface named iface, or "".
func hardwareAddr(links []address.Link, iface string) string {
	for _, l := range links {
		if l.Name == iface && len(l.HardwareAddr) > 0 {
			return l.HardwareAddr.String()
		}
	}
	return ""
}

// oldOwnerAddr is where this node, v's new owner, forwards the old owner's connections:
// the old owner's interface for v, as it reports it. A move away from a dead agent has no
// connections left to keep (states: memberlist's view, nil without memberlist).
func oldOwnerAddr(v *vigilv1.VirtualIP, node string, agents []vigilv1.NodeAgent, states map[string]membership.State) (net.HardwareAddr, bool) {
	t := v.Status.LastTransition
	if t == nil || t.To != node || t.From == "" || t.From == node || t.Reason == vigilv1.ReasonOwnerLost {
		return nil, false
	}
	if st, ok := states[t.From]; ok && !st.Alive {
		return nil, false
	}
	for i := range agents {
		if agents[i].Name != t.From {
			continue
		}
		for _, r := range agents[i].Status.VIPs {
			if r.Name == v.Name {
				mac, err := net.ParseMAC(r.HardwareAddress)
				return mac, err == nil
			}
		}
	}
	return nil, false
}

// confirmed reports whether v's owner reports it bound at v's epoch.
func confirmed(agents []vigilv1.NodeAgent, v *vigilv1.VirtualIP) bool {
	for i := range agents {
		if agents[i].Name != v.Status.Owner {
			continue
		}
		for _, r := range agents[i].Status.VIPs {
			if r.Name == v.Name && r.BoundEpoch == v.Status.Epoch {
				return true
			}
		}
	}
	return false
}

func findVIP(vips []vigilv1.VirtualIP, name string) *vigilv1.VirtualIP {
	for i := range vips {
		if vips[i].Name == name {
			return &vips[i]
		}
	}
	return nil
}

// setFenced records whether the node is isolated; it reports whether that changed.
func (s *nodeSync) setFenced(f bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := s.fenced != f
	s.fenced = f
	if f {
		s.stale = true
	}
	return changed
}

// idle reports whether the node owns or holds no VIP any more (handover done).
func (s *nodeSync) idle(ctx context.Context) bool {
	var list vigilv1.VirtualIPList
	if err := s.client.List(ctx, &list); err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.held) > 0 {
		return false
	}
	for i := range list.Items {
		if list.Items[i].Status.Owner == s.node {
			return false
		}
	}
	return true
}

// logFailures logs a VIP this node cannot hold when its reason changes (not every resync).
func (s *nodeSync) logFailures(ctx context.Context, results map[string]dataplane.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := map[string]string{}
	for name, r := range results {
		if r.Err != nil {
			now[name] = r.Err.Error()
			if s.failures[name] != now[name] {
				ctrl.LoggerFrom(ctx).Error(r.Err, "cannot hold VIP on this node", "vip", name)
				s.vipEvent(ctx, name, corev1.EventTypeWarning, "BindFailed", "Bind", "%s cannot hold the address: %v", s.node, r.Err)
			}
		}
	}
	s.failures = now
}

// vipEvent records an Event on the VirtualIP named vip (read from the cache for its UID, so
// that `kubectl describe vip` shows it).
func (s *nodeSync) vipEvent(ctx context.Context, vip, eventType, reason, action, note string, args ...any) {
	if s.events == nil {
		return
	}
	var v vigilv1.VirtualIP
	if err := s.client.Get(ctx, client.ObjectKey{Name: vip}, &v); err != nil {
		return
	}
	s.events.Eventf(&v, nil, eventType, reason, action, note, args...)
}

// healthChanged is the probe manager's callback: the node's eligibility for vip changed.
// It records an Event when the verdict flips, and when a first verdict is a failure; not
// for checks still without a verdict, nor for a first pass (every new VIP would get one
// per node).
func (s *nodeSync) healthChanged(vip string, h probe.Health) {
	if strings.HasSuffix(h.Reason, vigilv1.NoVerdictYet) {
		return
	}
	// Not s.mu: the probe manager calls this from Set, inside Reconcile, which holds it.
	s.verdictsMu.Lock()
	prev, known := s.verdicts[vip]
	s.verdicts[vip] = h.Eligible
	s.verdictsMu.Unlock()
	switch {
	case known && prev == h.Eligible, !known && h.Eligible:
		return
	case h.Eligible:
		s.vipEvent(context.Background(), vip, corev1.EventTypeNormal, "HealthChecksPassing", "HealthCheck", "%s: %s", s.node, h.Reason)
	default:
		s.vipEvent(context.Background(), vip, corev1.EventTypeWarning, "HealthCheckFailing", "HealthCheck", "%s: check %s fails: %s", s.node, h.Check, h.Reason)
	}
}

// Run runs the agent until ctx is done, then hands its VIPs over (make before break) and
// releases whatever is left.
func Run(ctx context.Context, cfg *rest.Config, o Options, logger logr.Logger) error {
	logger = logger.WithValues("node", o.NodeName)
	addrs, err := address.NewNetlink(netns.None())
	if err != nil {
		return err
	}
	defer addrs.Close()
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
	wake := make(chan event.GenericEvent, 1)
	poke := func() {
		select {
		case wake <- event.GenericEvent{Object: &vigilv1.NodeAgent{}}:
		default:
		}
	}
	var s *nodeSync // set below; probes report eligibility flips to it
	probes := probe.NewManager(probe.Env{NS: netns.None(), Gateway: gateway}, logger.WithName("probe"),
		func(vip string, h probe.Health) {
			poke()
			if s != nil {
				s.healthChanged(vip, h)
			}
		})
	defer probes.Stop()

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(vigilv1.AddToScheme(scheme))
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 logger,
		Metrics:                o.Metrics.ServerOptions(),
		HealthProbeBindAddress: o.HealthProbeBindAddress,
		// The cache holds only what the agent needs and its RBAC grants: its own Node, and
		// no Secrets (the memberlist key is read directly, in Vigil's namespace only).
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Node{}: {Field: fields.OneTermEqualSelector("metadata.name", o.NodeName)},
		}},
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
	})
	if err != nil {
		return fmt.Errorf("creating agent manager: %w", err)
	}
	m, err := registerMetrics(&o, probes, ann)
	if err != nil {
		return err
	}
	rep := newReporter(mgr.GetClient(), o.NodeName, clock.RealClock{})
	g := &gossip{client: mgr.GetClient(), reader: mgr.GetAPIReader(), node: o.NodeName, opts: o, report: rep,
		log: logger.WithName("gossip"), onChange: poke}
	api := &apiWatch{reader: mgr.GetAPIReader(), node: o.NodeName, lastOK: time.Now(), metrics: m}
	s = &nodeSync{client: mgr.GetClient(), reader: mgr.GetAPIReader(), node: o.NodeName, clock: clock.RealClock{}, addrs: addrs, dp: dp, probes: probes, report: rep,
		gossip: g, api: api, fence: o.FenceAfter, drain: o.HandoverDrain, metrics: m, events: mgr.GetEventRecorder("vigil-agent"),
		verdicts: map[string]bool{}, maxEpoch: map[string]int64{}, bound: map[string]int64{}, held: map[string]hold{}, forwards: map[string]forward{}, taken: map[string]int64{}}
	if fwd != nil { // a nil *NFT in the interface field would not compare equal to nil
		s.fwd = fwd
	}
	one := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{syncRequest}
	})
	ownNode := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == s.node })
	err = ctrl.NewControllerManagedBy(mgr).
		Named("agent").
		Watches(&vigilv1.VirtualIP{}, one).
		Watches(&corev1.Node{}, one, builder.WithPredicates(ownNode)).
		Watches(&vigilv1.NodeAgent{}, one, builder.WithPredicates(predicate.NewPredicateFuncs(func(client.Object) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.held) > 0 // only a handover waits on other agents
		}))).
		WatchesRawSource(source.Channel(wake, one)).
		Complete(s)
	if err != nil {
		return fmt.Errorf("setting up agent: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("cache", health.CacheSynced(mgr.GetCache())); err != nil {
		return fmt.Errorf("adding ready check: %w", err)
	}
	if err := mgr.AddReadyzCheck("memberlist", health.Func(g.ready)); err != nil {
		return fmt.Errorf("adding ready check: %w", err)
	}

	mgrCtx, stopMgr := context.WithCancel(context.Background())
	defer stopMgr()
	go rep.Run(mgrCtx, o.HeartbeatInterval)
	go api.run(mgrCtx)
	if o.Memberlist.Bind != "" {
		go g.run(mgrCtx)
		defer g.leave()
	}
	go fence(mgrCtx, s, api, g, o.FenceAfter, poke, logger)
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(mgrCtx) }()
	var runErr error
	select {
	case runErr = <-mgrDone:
	case <-ctx.Done():
		handOver(mgrCtx, s, rep, o.HandoverTimeout, logger)
		stopMgr()
		runErr = <-mgrDone
	}
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

// fence checks every 200 ms whether the node is isolated: the API server unanswered for
// fenceAfter and no memberlist majority. An agent that reaches its peers but not the API
// keeps serving, and so does one that reaches the API but not its peers (they may all
// have died).
func fence(ctx context.Context, s *nodeSync, api *apiWatch, g *gossip, fenceAfter time.Duration, poke func(), log logr.Logger) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		isolated := api.down(fenceAfter) && !g.majority(ctx)
		if s.setFenced(isolated) {
			s.metrics.setFenced(isolated)
			if isolated {
				log.Info("isolated: neither the API server nor a majority of peers reachable; releasing every VIP", "after", fenceAfter)
				s.agentEvent(ctx, corev1.EventTypeWarning, "Fenced", "Fence",
					"%s reached neither the API server nor a majority of its peers for %v and released every VIP", s.node, fenceAfter)
			} else {
				log.Info("reachable again; resuming")
				s.agentEvent(ctx, corev1.EventTypeNormal, "Unfenced", "Fence", "%s reaches the API server or a majority of its peers again", s.node)
			}
			poke()
		}
	}
}

// handOver marks the node draining and waits until its VIPs have moved to nodes that
// confirmed binding them, or timeout.
func handOver(ctx context.Context, s *nodeSync, rep *reporter, timeout time.Duration, log logr.Logger) {
	if timeout == 0 {
		return
	}
	log.Info("stopping: handing VIPs over", "timeout", timeout)
	rep.SetDraining(true)
	flushCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := rep.Flush(flushCtx); err != nil {
		log.Error(err, "cannot mark the node draining; releasing VIPs without handover")
		return
	}
	for !s.idle(flushCtx) {
		select {
		case <-flushCtx.Done():
			log.Info("handover timed out; releasing the rest")
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	log.Info("handover done")
}

// agentEvent records an Event on this node's NodeAgent.
func (s *nodeSync) agentEvent(ctx context.Context, eventType, reason, action, note string, args ...any) {
	if s.events == nil {
		return
	}
	var na vigilv1.NodeAgent
	if err := s.client.Get(ctx, client.ObjectKey{Name: s.node}, &na); err != nil {
		return
	}
	s.events.Eventf(&na, nil, eventType, reason, action, note, args...)
}

// registerMetrics registers the build, agent, probe, announcement and memberlist metrics
// on controller-runtime's registry.
func registerMetrics(o *Options, probes *probe.Manager, ann *announce.Raw) (*metrics, error) {
	m := newMetrics()
	for _, c := range append(m.collectors(), probes, ann, version.NewCollector()) {
		if err := ctrlmetrics.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	if o.Memberlist.Bind != "" {
		o.Memberlist.Metrics = membership.NewMetrics()
		o.Memberlist.Metrics.SetUp(false)
		if err := o.Memberlist.Metrics.Register(ctrlmetrics.Registry); err != nil {
			return nil, fmt.Errorf("registering memberlist metrics: %w", err)
		}
	}
	return m, nil
}
