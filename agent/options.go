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

// Options configure `vigil agent`; each is a flag.
type Options struct {
	// NodeName is the Node this agent runs on (the chart passes spec.nodeName).
	NodeName string
	// Metrics configures the metrics endpoint; HealthProbeBindAddress serves /healthz and
	// /readyz.
	Metrics                flagutil.MetricsFlags
	HealthProbeBindAddress string
	// PprofBindAddress serves Go's profiles (/debug/pprof/) for someone measuring where the
	// agent's CPU goes; off ("0") by default, since profiles show the process's internals.
	PprofBindAddress string
	// BindAddress is the IP the metrics, health and memberlist listeners bind to when their
	// own flag names no host (listen.go): the node's address, not every address of a host
	// network that may face the internet.
	BindAddress string

	// HeartbeatInterval is how often the NodeAgent heartbeat is renewed: the controller
	// falls back on it when memberlist cannot tell whether the agent lives. Shorter means
	// faster failover without memberlist, and more API writes (one per node per interval).
	HeartbeatInterval time.Duration

	// HandoverTimeout bounds a planned move on SIGTERM: the agent waits this long for other
	// nodes to take its VIPs over (make before break) before releasing the rest. Longer
	// gives slow clusters time; the pod's termination grace period must exceed it.
	HandoverTimeout time.Duration
	// HandoverDrain is how long the old owner of a planned move keeps serving the
	// connections it accepted, which the new owner forwards to it. Longer keeps longer
	// requests whole; 0 turns forwarding off (open connections are then reset at the move).
	HandoverDrain time.Duration

	// Namespace is Vigil's namespace, where the memberlist key Secret lives.
	Namespace string

	// FenceAfter is how long the agent must reach neither the API server nor a majority of
	// its peers before it releases every VIP (the isolated side of a partition). It is also
	// how long a standby waits after an owner's death before taking its VIPs over while no
	// controller can decide. Shorter means a shorter double holding when an owner is cut
	// off, and a higher chance of releasing during a brief double fault.
	FenceAfter time.Duration

	// AddressLifetime is the kernel lifetime of the VIP addresses, which the agent renews
	// four times per lifetime: an agent that dies (OOM kill, SIGKILL) leaves its addresses
	// for about this long (the kernel removes them; measured 1.0-1.05 s for 1 s). Shorter
	// is not possible (the kernel counts whole seconds). Shorter means a dead agent's
	// address goes sooner; longer tolerates a node so busy the agent cannot renew in time.
	AddressLifetime time.Duration

	// Memberlist configures gossip among the agents and the leading controller.
	Memberlist membership.Options
}

// BindFlags registers the options on fs with their defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.NodeName, "node-name", os.Getenv("NODE_NAME"), "name of the Node this agent runs on (default: $NODE_NAME)")
	o.Metrics.BindFlags(fs, ":9470")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", ":9471", "host:port of /healthz and /readyz; 0 turns it off")
	fs.StringVar(&o.PprofBindAddress, "pprof-bind-address", "0", "host:port of Go's /debug/pprof/ profiles; 0 turns it off")
	fs.StringVar(&o.BindAddress, "bind-address", "", "IP address the metrics, health and memberlist listeners bind to when their flag names no host (the chart passes the node's status.hostIP); empty: all addresses")
	fs.DurationVar(&o.HeartbeatInterval, "heartbeat-interval", 10*time.Second, "how often the agent renews its NodeAgent heartbeat (the controller's --agent-heartbeat-timeout must be several times longer)")
	fs.DurationVar(&o.HandoverTimeout, "handover-timeout", 10*time.Second, "on SIGTERM, how long to wait for other nodes to take the VIPs over before releasing them anyway")
	fs.DurationVar(&o.HandoverDrain, "handover-drain", 2*time.Second, "in a planned move, how long the old owner keeps serving the connections it accepted (the new owner forwards them to it with nftables); 0 turns forwarding off")
	fs.StringVar(&o.Namespace, "namespace", flagutil.DefaultNamespace(), "Vigil's namespace, holding the memberlist key Secret (default: $POD_NAMESPACE, else vigil-system)")
	fs.DurationVar(&o.FenceAfter, "fence-after", time.Second, "release every VIP when neither the API server nor a majority of memberlist peers has been reachable this long; also how long a standby waits after an owner's death to take over while no controller can decide")
	fs.DurationVar(&o.AddressLifetime, "address-lifetime", time.Second, "kernel lifetime of the VIP addresses, renewed four times per lifetime: a dead agent's addresses disappear about this long after its last renewal (the kernel removes them); whole seconds; 0 keeps them forever")
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
	if o.FenceAfter < 500*time.Millisecond {
		return fmt.Errorf("--fence-after %v is below 500ms", o.FenceAfter)
	}
	if o.AddressLifetime != 0 && (o.AddressLifetime < time.Second || o.AddressLifetime%time.Second != 0) {
		return fmt.Errorf("--address-lifetime %v must be whole seconds, at least 1s (or 0: forever)", o.AddressLifetime)
	}
	if err := o.Memberlist.Validate(); err != nil {
		return err
	}
	if err := validateBindIP(o.BindAddress); err != nil {
		return err
	}
	if err := flagutil.ValidateBindAddress("pprof-bind-address", o.PprofBindAddress); err != nil {
		return err
	}
	return flagutil.ValidateBindAddress("health-probe-bind-address", o.HealthProbeBindAddress)
}
