// Package membership is Vigil's memberlist: agents and the controller's leader gossip so
// that a dead node is noticed in well under a second. The Kubernetes API stays the source
// of truth; memberlist only makes it faster.
package membership

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/hashicorp/memberlist"
)

// DefaultBind is memberlist's default listening address. Port 7952, not memberlist's usual
// 7946, which MetalLB's speakers (and Docker Swarm, Serf) already use on the host network.
const DefaultBind = ":7952"

// Options are the memberlist settings exposed as flags.
type Options struct {
	Bind          string // host:port to listen on (TCP and UDP)
	Advertise     string // host to advertise ("" = the bind host, or the caller's default)
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	SuspicionMult int
	// Metrics, when set, receives memberlist's metrics and the members by state (not a flag).
	Metrics *Metrics
}

// BindFlags registers the options with defaults that detect a dead node in a few hundred
// milliseconds on a LAN while tolerating a busy machine (memberlist's Lifeguard stretches
// its timeouts when the local node itself is slow).
func (o *Options) BindFlags(fs *flag.FlagSet, defaultBind string) {
	fs.StringVar(&o.Bind, "memberlist-bind", defaultBind, "host:port of memberlist (UDP and TCP); empty turns memberlist off (slower failover on API heartbeats)")
	fs.StringVar(&o.Advertise, "memberlist-advertise", "", "address other members reach this one at (default: the node's InternalIP, or $POD_IP)")
	fs.DurationVar(&o.ProbeInterval, "memberlist-probe-interval", 100*time.Millisecond, "how often each member probes another")
	fs.DurationVar(&o.ProbeTimeout, "memberlist-probe-timeout", 80*time.Millisecond, "how long a probe waits for its ack before indirect probes")
	fs.IntVar(&o.SuspicionMult, "memberlist-suspicion-mult", 3, "suspicion timeout, in probe intervals (scaled by log10 of the members)")
}

// Validate reports the first invalid option.
func (o *Options) Validate() error {
	if o.Bind == "" {
		return nil
	}
	if _, _, err := splitHostPort(o.Bind); err != nil {
		return fmt.Errorf("--memberlist-bind %q: %w", o.Bind, err)
	}
	if o.Advertise != "" && net.ParseIP(o.Advertise) == nil {
		return fmt.Errorf("--memberlist-advertise %q is not an IP address", o.Advertise)
	}
	if o.ProbeInterval < 10*time.Millisecond || o.ProbeTimeout <= 0 || o.ProbeTimeout >= o.ProbeInterval {
		return fmt.Errorf("memberlist needs 0 < --memberlist-probe-timeout < --memberlist-probe-interval (>= 10ms)")
	}
	if o.SuspicionMult < 1 || o.SuspicionMult > 20 {
		return fmt.Errorf("--memberlist-suspicion-mult must be 1..20")
	}
	return nil
}

func splitHostPort(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, fmt.Errorf("port must be 1..65535")
	}
	return host, p, nil
}

// State is memberlist's view of one member.
type State struct {
	Alive bool
	Since time.Time
}

// Member is a running memberlist member.
type Member struct {
	ml  *memberlist.Memberlist
	log logr.Logger

	mu       sync.Mutex
	states   map[string]State
	onChange func(name string, alive bool)
	metrics  *Metrics
}

// Start creates the member named name. key is the 32-byte gossip encryption key; onChange
// is called (never blocking memberlist) when a member joins or dies.
func Start(name string, o Options, advertise string, key []byte, log logr.Logger, onChange func(name string, alive bool)) (*Member, error) {
	host, port, err := splitHostPort(o.Bind)
	if err != nil {
		return nil, err
	}
	cfg := memberlist.DefaultLANConfig()
	cfg.Name = name
	cfg.BindAddr, cfg.BindPort = host, port
	if cfg.BindAddr == "" {
		cfg.BindAddr = "0.0.0.0"
	}
	if o.Advertise != "" {
		advertise = o.Advertise
	}
	if advertise != "" {
		cfg.AdvertiseAddr, cfg.AdvertisePort = advertise, port
	}
	cfg.ProbeInterval, cfg.ProbeTimeout, cfg.SuspicionMult = o.ProbeInterval, o.ProbeTimeout, o.SuspicionMult
	// Spread news of a death as fast as it is detected.
	cfg.GossipInterval = o.ProbeInterval / 2
	cfg.GossipNodes = 4
	cfg.TCPTimeout = time.Second
	cfg.DeadNodeReclaimTime = time.Second // a restarted agent may rejoin under its name at once
	cfg.SecretKey = key
	cfg.LogOutput = &logWriter{log: log.WithName("memberlist")}
	m := &Member{log: log, states: map[string]State{}, onChange: onChange, metrics: o.Metrics}
	cfg.Events = m
	ml, err := memberlist.Create(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting memberlist on %s: %w", o.Bind, err)
	}
	m.ml = ml
	o.Metrics.SetUp(true)
	return m, nil
}

// NotifyJoin implements memberlist.EventDelegate.
func (m *Member) NotifyJoin(n *memberlist.Node) { m.set(n.Name, true) }

// NotifyLeave implements memberlist.EventDelegate: the member died or left.
func (m *Member) NotifyLeave(n *memberlist.Node) { m.set(n.Name, false) }

// NotifyUpdate implements memberlist.EventDelegate.
func (m *Member) NotifyUpdate(*memberlist.Node) {}

func (m *Member) set(name string, alive bool) {
	m.mu.Lock()
	m.states[name] = State{Alive: alive, Since: time.Now()}
	m.metrics.setMembers(m.states)
	m.mu.Unlock()
	m.log.V(1).Info("member changed", "member", name, "alive", alive)
	if m.onChange != nil {
		go m.onChange(name, alive) // never block memberlist's event loop
	}
}

// States returns memberlist's view of every member it has seen.
func (m *Member) States() map[string]State {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]State, len(m.states))
	for k, v := range m.states {
		out[k] = v
	}
	return out
}

// Join contacts the given host:port peers; it returns how many answered.
func (m *Member) Join(peers []string) (int, error) {
	if len(peers) == 0 {
		return 0, nil
	}
	return m.ml.Join(peers)
}

// Alive lists the names of live members, this one included.
func (m *Member) Alive() []string {
	var out []string
	for _, n := range m.ml.Members() {
		out = append(out, n.Name)
	}
	return out
}

// Address is host:port other members reach this one at.
func (m *Member) Address() string {
	n := m.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Leave tells the others this member is going, then stops it.
func (m *Member) Leave(timeout time.Duration) {
	_ = m.ml.Leave(timeout)
	_ = m.ml.Shutdown()
	m.metrics.SetUp(false)
}

// logWriter routes memberlist's log lines ("[LEVEL] memberlist: ...") into logr.
type logWriter struct{ log logr.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		s := string(line)
		// Drop the standard logger's timestamp, keep the level and message.
		if i := strings.Index(s, "["); i >= 0 {
			s = s[i:]
		}
		switch {
		case strings.HasPrefix(s, "[ERR]"):
			w.log.Error(nil, strings.TrimSpace(strings.TrimPrefix(s, "[ERR]")))
		case strings.HasPrefix(s, "[WARN]"):
			w.log.Info(strings.TrimSpace(strings.TrimPrefix(s, "[WARN]")), "level", "warn")
		case strings.HasPrefix(s, "[INFO]"):
			w.log.V(1).Info(strings.TrimSpace(strings.TrimPrefix(s, "[INFO]")))
		default:
			w.log.V(2).Info(strings.TrimSpace(strings.TrimPrefix(s, "[DEBUG]")))
		}
	}
	return len(p), nil
}
