// Package membership is Vigil's memberlist: agents and the controller's leader gossip so
// that a dead node is noticed in well under a second. The Kubernetes API stays the source
// of truth; memberlist only makes it faster.
package membership

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"slices"
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

// leaveTimeout bounds how long Leave waits for the leave message to go out: at 100 ms
// probes peers hear it well within, and then mark the member left rather than suspect it
// and declare it dead; a shutdown is not held up longer.
const leaveTimeout = 500 * time.Millisecond

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
	fs.StringVar(&o.Advertise, "memberlist-advertise", "", "address other members reach this one at (default: the host of --memberlist-bind when it names one, else the node's InternalIP, or $POD_IP)")
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
	keyring  *memberlist.Keyring
}

// Start creates the member named name. keys is the gossip keyring, primary first (see
// ReadKeys); onChange is called (never blocking memberlist) when a member joins or dies.
func Start(name string, o Options, advertise string, keys [][]byte, log logr.Logger, onChange func(name string, alive bool)) (*Member, error) {
	host, port, err := splitHostPort(o.Bind)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errNoKeys
	}
	keyring, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("memberlist keyring: %w", err)
	}
	cfg := memberlist.DefaultLANConfig()
	cfg.Name = name
	cfg.BindAddr, cfg.BindPort = host, port
	if cfg.BindAddr == "" {
		cfg.BindAddr = "0.0.0.0"
	}
	if a := advertiseAddr(o.Advertise, host, advertise); a != "" {
		cfg.AdvertiseAddr, cfg.AdvertisePort = a, port
	}
	cfg.ProbeInterval, cfg.ProbeTimeout, cfg.SuspicionMult = o.ProbeInterval, o.ProbeTimeout, o.SuspicionMult
	// Spread news of a death as fast as it is detected.
	cfg.GossipInterval = o.ProbeInterval / 2
	cfg.GossipNodes = 4
	cfg.TCPTimeout = time.Second
	cfg.DeadNodeReclaimTime = time.Second // a restarted agent may rejoin under its name at once
	// Every key decrypts, the first encrypts; SetKeys changes them at runtime (rotation).
	cfg.Keyring = keyring
	cfg.LogOutput = &logWriter{log: log.WithName("memberlist")}
	m := &Member{log: log, states: map[string]State{}, onChange: onChange, metrics: o.Metrics, keyring: keyring}
	cfg.Events = m
	ml, err := memberlist.Create(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting memberlist on %s: %w", o.Bind, err)
	}
	m.ml = ml
	o.Metrics.SetUp(true)
	o.Metrics.setKeys(keys)
	log.Info("memberlist keys", "primary", Fingerprint(keys[0]), "keys", fingerprints(keys))
	return m, nil
}

// advertiseAddr is the address other members are told to reach this one at: the
// --memberlist-advertise flag, else the address memberlist listens on when it listens on
// one address only (the node's, with the agent's --bind-address), else the caller's
// default (the node's InternalIP, the pod's IP), else "" for memberlist's own guess.
func advertiseAddr(flag, bindHost, fallback string) string {
	if flag != "" {
		return flag
	}
	if ip := net.ParseIP(bindHost); ip != nil && !ip.IsUnspecified() {
		return bindHost
	}
	return fallback
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
	// Every change of membership is worth a line: a keepalived user reads its log for
	// state changes first.
	if alive {
		m.log.Info("memberlist member joined or is alive again", "member", name)
	} else {
		m.log.Info("memberlist member died or left", "member", name)
	}
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

// JoinMissing contacts the peers (name -> host:port) memberlist does not count alive; it
// returns how many answered.
func (m *Member) JoinMissing(peers map[string]string) (int, error) {
	alive := m.Alive()
	var addrs []string
	for name, addr := range peers {
		if !slices.Contains(alive, name) {
			addrs = append(addrs, addr)
		}
	}
	return m.Join(addrs)
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

// Reachable lists the members memberlist counts alive and does not suspect right now:
// the first sign of a lost peer, a suspicion timeout before memberlist declares it dead.
// A node cut off from the others suspects them all at once while Lifeguard stretches its
// own timeouts (it cannot tell it is the one cut off), so fencing judges on this.
func (m *Member) Reachable() map[string]bool {
	out := map[string]bool{}
	for _, n := range m.ml.Members() {
		if n.State == memberlist.StateAlive {
			out[n.Name] = true
		}
	}
	return out
}

// PingAll pings the given members (name -> host:port) at once and reports which answered
// within the probe timeout: a direct, fresh answer to "whom do I reach", which does not
// wait for memberlist's round-robin probing (that a node cut off from the others also
// slows down, believing itself slow).
func (m *Member) PingAll(peers map[string]string) map[string]bool {
	type answer struct {
		name string
		ok   bool
	}
	ch := make(chan answer, len(peers))
	for name, hostport := range peers {
		go func() {
			addr, err := net.ResolveUDPAddr("udp", hostport)
			if err == nil {
				_, err = m.ml.Ping(name, addr)
			}
			ch <- answer{name, err == nil}
		}()
	}
	out := make(map[string]bool, len(peers))
	for range peers {
		a := <-ch
		out[a.name] = a.ok
	}
	return out
}

// Address is host:port other members reach this one at.
func (m *Member) Address() string {
	n := m.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Leave tells the others this member is going, then stops it.
func (m *Member) Leave() {
	_ = m.ml.Leave(leaveTimeout)
	_ = m.ml.Shutdown()
	m.metrics.SetUp(false)
	m.metrics.setKeys(nil)
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
			// memberlist's info lines are state changes (a member marked failed, joins).
			w.log.Info(strings.TrimSpace(strings.TrimPrefix(s, "[INFO]")))
		default:
			w.log.V(2).Info(strings.TrimSpace(strings.TrimPrefix(s, "[DEBUG]")))
		}
	}
	return len(p), nil
}
