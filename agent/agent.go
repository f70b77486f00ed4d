package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netns"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"vigil.dev/vigil/agent/address"
	"vigil.dev/vigil/agent/announce"
	"vigil.dev/vigil/agent/dataplane"
	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// +kubebuilder:rbac:groups=vigil.dev,resources=virtualips,verbs=get;list;watch

// resyncPeriod bounds how long drift (an address removed by hand, a link that lost it) can
// last before the agent repairs it.
const resyncPeriod = 10 * time.Second

// DesiredVIPs returns what node must hold: the VirtualIPs whose status names it as owner,
// as data-plane VIPs, sorted by address.
func DesiredVIPs(vips []vigilv1.VirtualIP, node string) []dataplane.VIP {
	var out []dataplane.VIP
	for i := range vips {
		v := &vips[i]
		if v.Status.Owner != node {
			continue
		}
		addr, err := netip.ParseAddr(v.Spec.Address)
		if err != nil {
			continue // the schema admits only IP literals
		}
		out = append(out, dataplane.VIP{
			Name:      v.Name,
			Address:   addr,
			PrefixLen: v.Spec.EffectivePrefixLength(),
			Interface: v.Spec.Interface,
			Announce: dataplane.Announce{
				Count:    int(v.Spec.Announce.Count),
				Interval: v.Spec.Announce.Interval.Duration,
				Refresh:  v.Spec.Announce.RefreshInterval.Duration,
			},
		})
	}
	slices.SortFunc(out, func(a, b dataplane.VIP) int { return a.Address.Compare(b.Address) })
	return out
}

// nodeSync makes the node hold exactly the VIPs it owns. Every VirtualIP event maps to the
// same request, so bursts of changes collapse into one sync.
type nodeSync struct {
	client client.Client
	node   string
	dp     *dataplane.Dataplane

	mu       sync.Mutex
	failures map[string]string
}

var syncRequest = reconcile.Request{NamespacedName: types.NamespacedName{Name: "node"}}

func (s *nodeSync) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	var list vigilv1.VirtualIPList
	if err := s.client.List(ctx, &list); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing VirtualIPs: %w", err)
	}
	results, err := s.dp.Sync(DesiredVIPs(list.Items, s.node))
	s.logFailures(ctx, results)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("syncing addresses: %w", err)
	}
	return ctrl.Result{RequeueAfter: resyncPeriod}, nil
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
			}
		}
	}
	s.failures = now
}

// Run runs the agent until ctx is done, then releases every VIP it holds.
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

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(vigilv1.AddToScheme(scheme))
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 logger,
		Metrics:                metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress: o.HealthProbeBindAddress,
	})
	if err != nil {
		return fmt.Errorf("creating agent manager: %w", err)
	}
	s := &nodeSync{client: mgr.GetClient(), node: o.NodeName, dp: dp}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("agent").
		Watches(&vigilv1.VirtualIP{}, handler.EnqueueRequestsFromMapFunc(
			func(context.Context, client.Object) []reconcile.Request { return []reconcile.Request{syncRequest} })).
		Complete(s)
	if err != nil {
		return fmt.Errorf("setting up VirtualIP watch: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding ready check: %w", err)
	}
	runErr := mgr.Start(ctx)
	// Stopping (SIGTERM) with nobody to hand over to: give every address up, so that no
	// stale VIP stays on this node.
	releaseErr := dp.ReleaseAll()
	if runErr != nil {
		runErr = fmt.Errorf("running agent: %w", runErr)
	}
	if releaseErr != nil {
		releaseErr = fmt.Errorf("releasing VIPs on exit: %w", releaseErr)
	}
	return errors.Join(runErr, releaseErr)
}
