// Package agent is Vigil's node agent: it learns which VirtualIPs its node owns and, in
// later layers, binds, announces and health-checks them.
package agent

import (
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"vigil.dev/vigil/internal/flagutil"
	"vigil.dev/vigil/internal/membership"
)

// Options configure `vigil agent`.
type Options struct {
	NodeName               string
	Metrics                flagutil.MetricsFlags
	HealthProbeBindAddress string
	HeartbeatInterval      time.Duration
	HandoverTimeout        time.Duration
	HandoverDrain          time.Duration
	Namespace              string
	FenceAfter             time.Duration
	Memberlist             membership.Options
}

// BindFlags registers the options on fs with their defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.NodeName, "node-name", os.Getenv("NODE_NAME"), "name of the Node this agent runs on (default: $NODE_NAME)")
	o.Metrics.BindFlags(fs, ":9470")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", ":9471", "host:port of /healthz and /readyz; 0 turns it off")
	fs.DurationVar(&o.HeartbeatInterval, "heartbeat-interval", 10*time.Second, "how often the agent renews its NodeAgent heartbeat (the controller's --agent-heartbeat-timeout must be several times longer)")
	fs.DurationVar(&o.HandoverTimeout, "handover-timeout", 10*time.Second, "on SIGTERM, how long to wait for other nodes to take the VIPs over before releasing them anyway")
	fs.DurationVar(&o.HandoverDrain, "handover-drain", 2*time.Second, "in a planned move, how long the old owner keeps serving the connections it accepted (the new owner forwards them to it with nftables); 0 turns forwarding off")
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "vigil-system"
	}
	fs.StringVar(&o.Namespace, "namespace", ns, "Vigil's namespace, holding the memberlist key Secret (default: $POD_NAMESPACE, else vigil-system)")
	fs.DurationVar(&o.FenceAfter, "fence-after", 5*time.Second, "release every VIP when neither the API server nor a majority of memberlist peers has been reachable this long")
	o.Memberlist.BindFlags(fs, membership.DefaultBind)
}

// Validate reports the first invalid option as an error a person can act on.
func (o *Options) Validate() error {
	if o.NodeName == "" {
		return fmt.Errorf("--node-name is required (or set $NODE_NAME, as the chart does from spec.nodeName)")
	}
	if errs := validation.IsDNS1123Subdomain(o.NodeName); len(errs) > 0 {
		return fmt.Errorf("--node-name %q is not a node name: %s", o.NodeName, errs[0])
	}
	if err := o.Metrics.Validate(); err != nil {
		return err
	}
	if o.HeartbeatInterval < 100*time.Millisecond {
		return fmt.Errorf("--heartbeat-interval %v is below 100ms", o.HeartbeatInterval)
	}
	if o.HandoverTimeout < 0 {
		return fmt.Errorf("--handover-timeout %v is negative", o.HandoverTimeout)
	}
	if o.HandoverDrain < 0 || o.HandoverDrain > time.Minute {
		return fmt.Errorf("--handover-drain %v is outside 0s..1m", o.HandoverDrain)
	}
	if o.FenceAfter < time.Second {
		return fmt.Errorf("--fence-after %v is below 1s", o.FenceAfter)
	}
	if err := o.Memberlist.Validate(); err != nil {
		return err
	}
	return flagutil.ValidateBindAddress("health-probe-bind-address", o.HealthProbeBindAddress)
}
