package controllers

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"vigil.dev/vigil/internal/flagutil"
	"vigil.dev/vigil/internal/health"
	"vigil.dev/vigil/internal/membership"
	"vigil.dev/vigil/internal/scheme"
	"vigil.dev/vigil/internal/version"
)

// The metrics endpoint authenticates and authorizes its scrapers (--metrics-secure).
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// livenessCheckEvery is how often the leader looks for agents whose heartbeat stopped
// (memberlist tells of deaths at once; this covers agents it cannot see).
const livenessCheckEvery = 500 * time.Millisecond

// Options configure `vigil controller`.
type Options struct {
	Metrics                 flagutil.MetricsFlags
	HealthProbeBindAddress  string
	PprofBindAddress        string // Go's profiles, off ("0") by default
	LeaderElection          bool
	LeaderElectionNamespace string
	LeaseDuration           time.Duration
	RenewDeadline           time.Duration
	RetryPeriod             time.Duration
	AgentHeartbeatTimeout   time.Duration
	// NodeEchoInterval is how often the leader sends an ICMP echo request to every node
	// with an agent; NodeEchoDeadAfter how long a node that answered before may stay silent
	// before its agent counts as dead. A node's kernel answers however busy its processes
	// are, so this catches a crashed or cut-off node in NodeEchoDeadAfter plus one interval,
	// well before memberlist's suspicion timeout, without counting a starved agent dead.
	// Shorter fails over sooner; too short counts as dead a node whose replies a congested
	// network delays. 0 turns the watch off (memberlist and heartbeats only).
	NodeEchoInterval  time.Duration
	NodeEchoDeadAfter time.Duration
	Memberlist        membership.Options
}

// BindFlags registers the options on fs with their defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	o.Metrics.BindFlags(fs, ":8080")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "host:port of /healthz and /readyz; 0 turns it off")
	fs.StringVar(&o.PprofBindAddress, "pprof-bind-address", "0", "host:port of Go's /debug/pprof/ profiles; 0 turns it off")
	fs.BoolVar(&o.LeaderElection, "leader-elect", true, "elect one active controller among replicas with a Lease")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", flagutil.DefaultNamespace(), "namespace of the leader-election Lease (default: $POD_NAMESPACE, else vigil-system)")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", 15*time.Second, "how long a leader's Lease is valid without renewal")
	fs.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", 10*time.Second, "how long the leader retries renewing before it steps down")
	fs.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", 2*time.Second, "how often candidates try to acquire or renew the Lease")
	fs.DurationVar(&o.AgentHeartbeatTimeout, "agent-heartbeat-timeout", 30*time.Second, "an agent whose NodeAgent heartbeat is older is dead, unless memberlist knows better")
	fs.DurationVar(&o.NodeEchoInterval, "node-echo-interval", 20*time.Millisecond, "how often the leader sends an ICMP echo request to every node with an agent; 0 turns the node watch off")
	fs.DurationVar(&o.NodeEchoDeadAfter, "node-echo-dead-after", 150*time.Millisecond, "a node that stops answering the leader's echo requests this long counts as dead (its VIPs move); it must span several intervals")
	o.Memberlist.BindFlags(fs, membership.DefaultBind)
}

// Validate reports the first invalid option as an error a person can act on.
func (o *Options) Validate() error {
	if err := o.Metrics.Validate(); err != nil {
		return err
	}
	if err := flagutil.ValidateBindAddress("health-probe-bind-address", o.HealthProbeBindAddress); err != nil {
		return err
	}
	if err := flagutil.ValidateBindAddress("pprof-bind-address", o.PprofBindAddress); err != nil {
		return err
	}
	if o.AgentHeartbeatTimeout < time.Second {
		return fmt.Errorf("--agent-heartbeat-timeout %v is below 1s", o.AgentHeartbeatTimeout)
	}
	if err := o.Memberlist.Validate(); err != nil {
		return err
	}
	if o.NodeEchoInterval < 0 || (o.NodeEchoInterval > 0 && o.NodeEchoInterval < time.Millisecond) {
		return fmt.Errorf("--node-echo-interval %v: want 0 (off) or at least 1ms", o.NodeEchoInterval)
	}
	if o.NodeEchoInterval > 0 && o.NodeEchoDeadAfter < 3*o.NodeEchoInterval {
		return fmt.Errorf("--node-echo-dead-after %v must be at least 3 intervals (--node-echo-interval %v): one lost request must not count a node dead", o.NodeEchoDeadAfter, o.NodeEchoInterval)
	}
	if !o.LeaderElection {
		return nil
	}
	if errs := validation.IsDNS1123Label(o.LeaderElectionNamespace); len(errs) > 0 {
		return fmt.Errorf("--leader-election-namespace %q is not a namespace name: %s", o.LeaderElectionNamespace, errs[0])
	}
	if o.RetryPeriod <= 0 || o.RenewDeadline <= o.RetryPeriod || o.LeaseDuration <= o.RenewDeadline {
		return errors.New("leader election needs 0 < --leader-elect-retry-period < --leader-elect-renew-deadline < --leader-elect-lease-duration")
	}
	return nil
}

// Run runs the controller manager until ctx is done.
func Run(ctx context.Context, cfg *rest.Config, o Options, logger logr.Logger) error {
	lock, err := o.leaderLock(cfg, logger)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Logger:                 logger,
		Scheme:                 scheme.New(),
		Metrics:                o.Metrics.ServerOptions(),
		HealthProbeBindAddress: o.HealthProbeBindAddress,
		PprofBindAddress:       o.PprofBindAddress,
		Cache:                  CacheOptions(),
		// The memberlist key Secret is read directly: a cache would watch every Secret in
		// the cluster, which the controller has no business reading (nor RBAC for).
		Client:                              client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		LeaderElection:                      o.LeaderElection,
		LeaderElectionID:                    LeaderElectionID, // names it in metrics and logs; lock is the Lease
		LeaderElectionResourceLockInterface: lock,
		LeaderElectionReleaseOnCancel:       true,
		LeaseDuration:                       &o.LeaseDuration,
		RenewDeadline:                       &o.RenewDeadline,
		RetryPeriod:                         &o.RetryPeriod,
	})
	if err != nil {
		return fmt.Errorf("creating controller manager: %w", err)
	}
	metrics, err := registerMetrics(mgr, &o)
	if err != nil {
		return err
	}
	wake := make(chan event.GenericEvent, 1)
	observer := &Observer{}
	watcher := &livenessWatcher{Client: mgr.GetClient(), Clock: clock.RealClock{}, Observer: observer, Timeout: o.AgentHeartbeatTimeout,
		Every: livenessCheckEvery, Wake: wake, metrics: metrics}
	r := &VirtualIPReconciler{
		Client: mgr.GetClient(), Clock: clock.RealClock{}, Recorder: mgr.GetEventRecorder("vigil-controller"),
		HeartbeatTimeout: o.AgentHeartbeatTimeout, Wake: wake, metrics: metrics, Observer: observer,
	}
	var gossip *gossipMember
	if o.Memberlist.Bind != "" {
		gossip = &gossipMember{Client: mgr.GetClient(), Namespace: o.LeaderElectionNamespace, Options: o.Memberlist,
			Advertise: os.Getenv("POD_IP"), Log: logger.WithName("gossip"), OnChange: watcher.Poke}
		if err := mgr.Add(gossip); err != nil {
			return fmt.Errorf("adding memberlist: %w", err)
		}
	}
	var echoes *nodeWatch
	if o.NodeEchoInterval > 0 {
		echoes = &nodeWatch{Client: mgr.GetClient(), NS: netns.None(), Interval: o.NodeEchoInterval, DeadAfter: o.NodeEchoDeadAfter,
			Log: logger.WithName("nodewatch"), OnChange: watcher.Poke, metrics: metrics}
		if err := mgr.Add(echoes); err != nil {
			return fmt.Errorf("adding the node watch: %w", err)
		}
	}
	if gossip != nil || echoes != nil {
		members := func() map[string]membership.State {
			var m map[string]membership.State
			if gossip != nil {
				m = gossip.Members()
			}
			return echoes.Overlay(m)
		}
		r.Members, watcher.Members = members, members
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up VirtualIP controller: %w", err)
	}
	if err := mgr.Add(watcher); err != nil {
		return fmt.Errorf("adding liveness watcher: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("cache", health.CacheSynced(mgr.GetCache())); err != nil {
		return fmt.Errorf("adding ready check: %w", err)
	}
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running controller manager: %w", err)
	}
	return nil
}

// registerMetrics registers the build, controller and memberlist metrics on
// controller-runtime's registry, and keeps vigil_controller_leader true while leading.
func registerMetrics(mgr ctrl.Manager, o *Options) (*metrics, error) {
	leading := func() bool {
		select {
		case <-mgr.Elected():
			return true
		default:
			return false
		}
	}
	m := newMetrics()
	if err := m.Register(ctrlmetrics.Registry, mgr.GetCache(), leading); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	if err := ctrlmetrics.Registry.Register(version.NewCollector()); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	if o.Memberlist.Bind != "" {
		o.Memberlist.Metrics = membership.NewMetrics()
		if err := o.Memberlist.Metrics.Register(ctrlmetrics.Registry); err != nil {
			return nil, fmt.Errorf("registering memberlist metrics: %w", err)
		}
	}
	m.SetLeader(false)
	err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		m.SetLeader(true)
		<-ctx.Done()
		m.SetLeader(false)
		return nil
	}))
	return m, err
}
