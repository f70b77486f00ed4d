package agent

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// +kubebuilder:rbac:groups=vigil.dev,resources=virtualips,verbs=get;list;watch

// OwnedAddresses returns the addresses of the VirtualIPs whose status names node as owner,
// sorted: the set the agent must hold.
func OwnedAddresses(vips []vigilv1.VirtualIP, node string) []string {
	var out []string
	for i := range vips {
		if vips[i].Status.Owner == node {
			out = append(out, vips[i].Spec.Address)
		}
	}
	slices.Sort(out)
	return out
}

// ownerWatcher recomputes the owned set whenever a VirtualIP changes and logs changes of it.
// Binding the addresses is the data plane's job, which is not built yet.
type ownerWatcher struct {
	client client.Client
	node   string

	mu    sync.Mutex
	owned []string
}

func (w *ownerWatcher) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	var list vigilv1.VirtualIPList
	if err := w.client.List(ctx, &list); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing VirtualIPs: %w", err)
	}
	owned := OwnedAddresses(list.Items, w.node)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !slices.Equal(owned, w.owned) {
		log.FromContext(ctx).Info("addresses owned by this node changed", "owned", owned, "previous", w.owned)
		w.owned = owned
	}
	return ctrl.Result{}, nil
}

// Run runs the agent until ctx is done.
func Run(ctx context.Context, cfg *rest.Config, o Options, logger logr.Logger) error {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(vigilv1.AddToScheme(scheme))
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 logger.WithValues("node", o.NodeName),
		Metrics:                metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress: o.HealthProbeBindAddress,
	})
	if err != nil {
		return fmt.Errorf("creating agent manager: %w", err)
	}
	w := &ownerWatcher{client: mgr.GetClient(), node: o.NodeName}
	if err := ctrl.NewControllerManagedBy(mgr).For(&vigilv1.VirtualIP{}).Named("agent-owner").Complete(w); err != nil {
		return fmt.Errorf("setting up VirtualIP watch: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding ready check: %w", err)
	}
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running agent: %w", err)
	}
	return nil
}
