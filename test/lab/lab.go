// Package lab builds Vigil's test lab on one Linux machine: a control plane (real etcd and
// kube-apiserver), N nodes and a client, each in its own network namespace, joined by a
// bridge that lives in a namespace of its own. Nothing touches the host's interfaces: every
// address is in 198.18.0.0/15 or fd00::/8 and every link lives inside a lab namespace.
//
// The lab also supervises processes in those namespaces, injects real faults and records
// client traffic to a VIP. It needs root (CAP_NET_ADMIN).
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Lab addresses. Nodes are 198.18.0.11, .12, ...; VIPs are taken from .100 up.
var (
	prefixV4       = netip.MustParsePrefix("198.18.0.0/24")
	prefixV6       = netip.MustParsePrefix("fd00:198:18::/64")
	GatewayV4      = netip.MustParseAddr("198.18.0.1")
	GatewayV6      = netip.MustParseAddr("fd00:198:18::1")
	ControlPlaneV4 = netip.MustParseAddr("198.18.0.2")
	ClientV4       = netip.MustParseAddr("198.18.0.3")
)

const (
	// DefaultRunRoot holds one directory per lab run: logs, certificates, etcd data.
	DefaultRunRoot = "/tmp/vigil-lab"
	// RegistryDir records every run, wherever its run directory is, so that `down --all`
	// knows each lab namespace's owner. It is on tmpfs, like /run/netns: both go at reboot.
	RegistryDir = "/run/vigil-lab"
	// NodeInterface is the name of every member's interface on the lab bridge.
	NodeInterface = "eth0"
	// HTTPPort is where each node's HTTP service answers with the node's name.
	HTTPPort = 80
	// APIServerPort is kube-apiserver's port on ControlPlaneV4.
	APIServerPort = 6443

	bridgeName = "br0"
)

// namePattern matches the namespaces of any lab run: "vl" + 6 hex digits + "-" + member.
var namePattern = regexp.MustCompile(`^vl[0-9a-f]{6}-`)

// VIPv4 is the i-th lab VIP address (i from 0): 198.18.0.100 + i.
func VIPv4(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(100 + i)}) }

// VIPv6 is the i-th lab IPv6 VIP address: fd00:198:18::100 + i.
func VIPv6(i int) netip.Addr { return hostAddr(prefixV6, 0x100+i) }

func hostAddr(p netip.Prefix, host int) netip.Addr {
	b := p.Addr().AsSlice()
	b[len(b)-2] = byte(host >> 8)
	b[len(b)-1] = byte(host)
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Config describes a lab to bring up.
type Config struct {
	// Nodes is the number of nodes (default 3), named node-a, node-b, ...
	Nodes int
	// WithoutControlPlane skips etcd and kube-apiserver (for systems like keepalived).
	WithoutControlPlane bool
	// Assets is the directory with etcd, kube-apiserver and kubectl (default
	// $KUBEBUILDER_ASSETS, as set by the Makefile).
	Assets string
	// HelperBin is the lab's helper binary (test/labhelper), whose subcommands are the
	// processes the lab runs in its namespaces; built from source into the run directory
	// when empty.
	HelperBin string
	// ToolsBin is the directory with helm and the other tools `make tools` installs
	// (default $VIGIL_TOOLS_BIN, as set by the Makefile, else hack/tools.sh bin-path).
	ToolsBin string
	// RunRoot is where run directories are made (default /tmp/vigil-lab).
	RunRoot string
	// Detached leaves the lab running after this process exits (the CLI's `up`);
	// otherwise every lab process dies with this one.
	Detached bool
	// SecondNetwork adds a second bridge and an eth1 in every node and the client, on
	// 198.19.0.0/24 and fd00:199:19::/64 (see secondnet.go).
	SecondNetwork bool
	// AuditLog makes kube-apiserver write an audit log of Vigil's requests (see audit.go).
	AuditLog bool
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// Member is one namespace on the lab bridge.
type Member struct {
	Name string // node-a, cp, client; also the bridge port's name
	NS   string // network namespace name
	IPv4 netip.Addr
	IPv6 netip.Addr
	// SecondIPv4 and SecondIPv6 are the member's addresses on the second network (eth1),
	// invalid without one (and on the control plane, which is not on it).
	SecondIPv4 netip.Addr
	SecondIPv6 netip.Addr
}

// Lab is a running lab.
type Lab struct {
	Prefix       string
	RunDir       string
	BridgeNS     string
	ControlPlane *Member // runs etcd and kube-apiserver unless WithoutControlPlane
	Client       *Member
	Nodes        []*Member
	// Kubeconfig is an admin kubeconfig for https://198.18.0.2:6443, usable from any lab
	// namespace (from the host, use RESTConfig, which dials inside the lab).
	Kubeconfig string
	HelperBin  string
	Assets     string
	ToolsBin   string

	detached bool
	logf     func(string, ...any)
	mu       sync.Mutex
	procs    map[string]*Process
	closing  bool // set when teardown starts: no process is started any more
	state    state
	downOnce sync.Once
	downErr  error

	installMu    sync.Mutex
	installation *Installation // Vigil, once installed with helm
	metricsToken string        // may scrape the metrics (MetricsToken)

	secondNetwork bool
	auditLog      bool
	// crashed are the nodes CrashNode took down and RestoreNode has not brought back:
	// nothing is restarted on them meanwhile, as no kubelet runs there.
	crashed map[string]bool
	// controllers are the running controller replicas, by process name (see
	// StartController, StartControllerReplica).
	controllers map[string]*Member
}

// state is what `down` needs to remove a run, also after the process that made it died.
type state struct {
	Prefix     string    `json:"prefix"`
	RunDir     string    `json:"runDir"`
	OwnerPID   int       `json:"ownerPID"`
	Detached   bool      `json:"detached"`
	Namespaces []string  `json:"namespaces"`
	Created    time.Time `json:"created"`
	Kubeconfig string    `json:"kubeconfig,omitempty"`
	Nodes      []string  `json:"nodes"`

	unreadable bool
}

// ErrNotRoot is returned by Up when the process cannot manage network namespaces.
var ErrNotRoot = errors.New("the lab needs root (CAP_NET_ADMIN) to create network namespaces: run as root, e.g. sudo make test")

// Up builds a lab. On error everything already made is torn down.
func Up(ctx context.Context, cfg Config) (l *Lab, err error) {
	if err := checkHost(); err != nil {
		return nil, err
	}
	if cfg, err = cfg.withDefaults(); err != nil {
		return nil, err
	}
	if l, err = newLab(cfg); err != nil {
		return nil, err
	}
	if !cfg.Detached {
		registerForSignals(l)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("bringing the lab up: %w (logs in %s)", err, l.RunDir)
			if downErr := l.teardown(true); downErr != nil {
				err = errors.Join(err, downErr)
			}
			l = nil
		}
	}()
	return l, l.start(ctx, cfg)
}

// checkHost checks that this process can build a lab: root, ip and nft.
func checkHost() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("the lab needs %s (Debian packages iproute2 and nftables; `make tools` installs them): %w", bin, err)
		}
	}
	return nil
}

// withDefaults fills in what cfg leaves empty, from the environment where the Makefile
// sets it, and checks the rest.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = 3
	}
	if cfg.Nodes < 1 || cfg.Nodes > 60 {
		return cfg, fmt.Errorf("a lab has 1 to 60 nodes, not %d", cfg.Nodes)
	}
	if cfg.RunRoot == "" {
		cfg.RunRoot = DefaultRunRoot
	}
	if cfg.Assets == "" {
		cfg.Assets = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if cfg.ToolsBin == "" {
		cfg.ToolsBin = os.Getenv("VIGIL_TOOLS_BIN")
	}
	if !cfg.WithoutControlPlane && cfg.Assets == "" {
		return cfg, errors.New("no etcd/kube-apiserver: set KUBEBUILDER_ASSETS (make -s assets-path) or run through make")
	}
	return cfg, nil
}

// newLab names a new lab with a random prefix and makes its run directory; nothing runs
// yet.
func newLab(cfg Config) (*Lab, error) {
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	prefix := "vl" + hex.EncodeToString(rnd[:])
	l := &Lab{
		Prefix:    prefix,
		RunDir:    filepath.Join(cfg.RunRoot, prefix),
		BridgeNS:  prefix + "-br",
		HelperBin: cfg.HelperBin,
		Assets:    cfg.Assets,
		ToolsBin:  cfg.ToolsBin,
		detached:  cfg.Detached,
		logf:      cfg.Logf,
		procs:     map[string]*Process{},

		secondNetwork: cfg.SecondNetwork,
		auditLog:      cfg.AuditLog,
		crashed:       map[string]bool{},
		controllers:   map[string]*Member{},
	}
	if l.logf == nil {
		l.logf = func(string, ...any) {}
	}
	l.state = state{Prefix: prefix, RunDir: l.RunDir, OwnerPID: os.Getpid(), Detached: cfg.Detached, Created: time.Now()}
	if err := os.MkdirAll(filepath.Join(l.RunDir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("making run directory: %w", err)
	}
	return l, nil
}

// start builds the network, the helper binary, the nodes' services and the control
// plane, and waits until every node's service answers.
func (l *Lab) start(ctx context.Context, cfg Config) error {
	start := time.Now()
	if err := l.buildNetwork(cfg.Nodes); err != nil {
		return err
	}
	l.logf("lab %s: %d nodes, bridge and client namespaces up in %v", l.Prefix, cfg.Nodes, time.Since(start).Round(time.Millisecond))
	if l.HelperBin == "" {
		if err := l.buildHelper(); err != nil {
			return err
		}
	}
	for _, n := range l.Nodes {
		if err := l.StartService(n.Name); err != nil {
			return err
		}
	}
	if !cfg.WithoutControlPlane {
		t := time.Now()
		if err := l.startControlPlane(ctx); err != nil {
			return err
		}
		l.logf("lab %s: etcd and kube-apiserver ready at https://%s:%d in %v", l.Prefix, ControlPlaneV4, APIServerPort, time.Since(t).Round(time.Millisecond))
	}
	for _, n := range l.Nodes {
		if err := l.waitForService(ctx, n); err != nil {
			return err
		}
	}
	l.logf("lab %s: up in %v (run directory %s)", l.Prefix, time.Since(start).Round(time.Millisecond), l.RunDir)
	return nil
}

func (l *Lab) saveState() error {
	b, err := json.MarshalIndent(l.state, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(RegistryDir, 0o755); err != nil {
		return err
	}
	// Write and rename, so that a concurrent `down --all` never reads half an entry.
	tmp := registryFile(l.Prefix) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, registryFile(l.Prefix))
}

func registryFile(prefix string) string { return filepath.Join(RegistryDir, prefix+".json") }

func (l *Lab) addNamespace(name string) error {
	l.state.Namespaces = append(l.state.Namespaces, name)
	if err := l.saveState(); err != nil { // before creating it, so a crash cannot orphan it
		return err
	}
	if _, err := ip("netns", "add", name); err != nil {
		return err
	}
	if _, err := ip("-n", name, "link", "set", "lo", "up"); err != nil {
		return err
	}
	// No DAD delay on lab addresses, and IPv6 addresses survive a link flap.
	for _, s := range []string{
		"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
		"net.ipv6.conf.all.keep_addr_on_down=1", "net.ipv6.conf.default.keep_addr_on_down=1",
	} {
		if _, err := inNS(name, "sysctl", "-q", "-w", s); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) buildNetwork(nodes int) error {
	if err := l.addNamespace(l.BridgeNS); err != nil {
		return err
	}
	br := l.BridgeNS
	cmds := [][]string{
		{"-n", br, "link", "add", bridgeName, "type", "bridge", "stp_state", "0", "mcast_snooping", "0"},
		{"-n", br, "addr", "add", netip.PrefixFrom(GatewayV4, prefixV4.Bits()).String(), "dev", bridgeName},
		{"-n", br, "addr", "add", netip.PrefixFrom(GatewayV6, prefixV6.Bits()).String(), "dev", bridgeName, "nodad"},
		{"-n", br, "link", "set", bridgeName, "up"},
	}
	for _, c := range cmds {
		if _, err := ip(c...); err != nil {
			return err
		}
	}
	l.ControlPlane = &Member{Name: "cp", IPv4: ControlPlaneV4, IPv6: hostAddr(prefixV6, 2)}
	l.Client = &Member{Name: "client", IPv4: ClientV4, IPv6: hostAddr(prefixV6, 3)}
	members := []*Member{l.ControlPlane, l.Client}
	for i := range nodes {
		n := &Member{
			Name: "node-" + nodeSuffix(i),
			IPv4: hostAddr(prefixV4, 11+i),
			IPv6: hostAddr(prefixV6, 0x11+i),
		}
		l.Nodes = append(l.Nodes, n)
		l.state.Nodes = append(l.state.Nodes, n.Name)
		members = append(members, n)
	}
	for _, m := range members {
		m.NS = l.Prefix + "-" + m.Name
		if err := l.addMember(m); err != nil {
			return err
		}
	}
	if l.secondNetwork {
		if err := l.buildSecondNetwork(append([]*Member{l.Client}, l.Nodes...)); err != nil {
			return err
		}
	}
	return l.saveState()
}

// nodeSuffix names nodes a..z, then aa, ab, ...
func nodeSuffix(i int) string {
	if i < 26 {
		return string(rune('a' + i))
	}
	return nodeSuffix(i/26-1) + nodeSuffix(i%26)
}

func (l *Lab) addMember(m *Member) error {
	if err := l.addNamespace(m.NS); err != nil {
		return err
	}
	br := l.BridgeNS
	cmds := [][]string{
		// Created inside the bridge namespace with its peer placed directly in the member's:
		// no link ever exists in the host namespace.
		{"-n", br, "link", "add", m.Name, "type", "veth", "peer", "name", NodeInterface, "netns", m.NS},
		{"-n", br, "link", "set", m.Name, "master", bridgeName, "up"},
		{"-n", m.NS, "addr", "add", netip.PrefixFrom(m.IPv4, prefixV4.Bits()).String(), "dev", NodeInterface},
		{"-n", m.NS, "addr", "add", netip.PrefixFrom(m.IPv6, prefixV6.Bits()).String(), "dev", NodeInterface, "nodad"},
		{"-n", m.NS, "link", "set", NodeInterface, "up"},
		{"-n", m.NS, "route", "add", "default", "via", GatewayV4.String()},
		{"-n", m.NS, "-6", "route", "add", "default", "via", GatewayV6.String()},
	}
	for _, c := range cmds {
		if _, err := ip(c...); err != nil {
			return err
		}
	}
	return nil
}

// buildHelper builds test/labhelper, whose subcommands are the lab's HTTP service,
// traffic recorder, CPU burner and its other helper processes.
func (l *Lab) buildHelper() error {
	out := filepath.Join(l.RunDir, "labhelper")
	cmd := exec.Command("go", "build", "-o", out, "./test/labhelper")
	cmd.Dir = repoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the lab helper (go build ./test/labhelper): %w\n%s", err, b)
	}
	l.HelperBin = out
	return nil
}

func thisFile() string {
	_, file, _, _ := runtime.Caller(0)
	return file
}

// Node returns the node member with that name.
func (l *Lab) Node(name string) (*Member, error) {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("lab %s has no node %q", l.Prefix, name)
}

// Exec runs a command inside member's namespace and returns its output.
func (l *Lab) Exec(member string, name string, args ...string) (string, error) {
	m, err := l.member(member)
	if err != nil {
		return "", err
	}
	return inNS(m.NS, name, args...)
}

func (l *Lab) member(name string) (*Member, error) {
	switch name {
	case "client":
		return l.Client, nil
	case "cp":
		return l.ControlPlane, nil
	}
	return l.Node(name)
}

// StartProcess runs argv inside a member's namespace (a node, "client" or "cp"), with its
// output in the run directory's logs. name must be unique among running processes.
func (l *Lab) StartProcess(member, name string, argv ...string) (*Process, error) {
	m, err := l.member(member)
	if err != nil {
		return nil, err
	}
	return l.startProcess(m.NS, member+"/"+name, argv...)
}

// Down stops every process and removes every namespace and link of the lab, and its run
// directory. It is safe to call more than once.
func (l *Lab) Down() error {
	return l.teardown(false)
}

func (l *Lab) teardown(keepRunDir bool) error {
	l.downOnce.Do(func() {
		l.mu.Lock()
		l.closing = true
		l.mu.Unlock()
		unregisterForSignals(l)
		l.downErr = removeRun(l.state, keepRunDir)
		l.mu.Lock()
		for _, p := range l.procs {
			_ = p.Wait(5 * time.Second)
		}
		l.mu.Unlock()
	})
	return l.downErr
}

// removeRun kills everything inside the run's namespaces, deletes them (which deletes
// their links), its registry entry and, unless keepRunDir, its run directory.
func removeRun(s state, keepRunDir bool) error {
	var errs []error
	existing, err := listNamespaces()
	if err != nil {
		return err
	}
	var ours []string
	for _, ns := range s.Namespaces {
		if strings.HasPrefix(ns, s.Prefix+"-") && namePattern.MatchString(ns) && contains(existing, ns) {
			ours = append(ours, ns)
		}
	}
	for _, ns := range ours {
		if err := killNamespace(ns); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range ours {
		if _, err := ip("netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if s.Prefix != "" {
		if err := os.Remove(registryFile(s.Prefix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if !keepRunDir && s.RunDir != "" {
		if err := os.RemoveAll(s.RunDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Runs lists every registered lab run.
func Runs() (map[string]state, error) {
	entries, err := os.ReadDir(RegistryDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	runs := map[string]state{}
	for _, e := range entries {
		prefix, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue // a .tmp being renamed
		}
		var s state
		b, err := os.ReadFile(filepath.Join(RegistryDir, e.Name()))
		if err != nil || json.Unmarshal(b, &s) != nil || s.Prefix != prefix {
			// Unreadable: count it as a live run of its own, so nothing of it is removed.
			s = state{Prefix: prefix, Detached: true, unreadable: true}
		}
		runs[prefix] = s
	}
	return runs, nil
}

// alive reports whether the run's owner still holds it: a detached run is held until
// `down`; any other run dies with the process that made it.
func (s state) alive() bool {
	if s.Detached {
		return true
	}
	return syscall.Kill(s.OwnerPID, 0) == nil
}

// DescribeRun is a line about a run for `lab status`.
func DescribeRun(s state) string {
	holder := fmt.Sprintf("owned by pid %d", s.OwnerPID)
	switch {
	case s.Detached:
		holder = "detached (CLI)"
	case !s.alive():
		holder = fmt.Sprintf("crashed (pid %d gone): remove with lab down --all", s.OwnerPID)
	}
	return fmt.Sprintf("%s  %s  nodes %s  since %s  %s",
		s.Prefix, holder, strings.Join(s.Nodes, ","), s.Created.Format(time.TimeOnly), s.RunDir)
}

// DownRun removes the run with that prefix, whoever made it.
func DownRun(prefix string) error {
	runs, err := Runs()
	if err != nil {
		return err
	}
	s, ok := runs[prefix]
	if !ok {
		return fmt.Errorf("no lab run %q (see lab status)", prefix)
	}
	return removeRun(s, false)
}

// DownAll removes the leftovers of crashed runs: runs whose owning process is gone (and,
// with detached, runs left up by the CLI), and lab-named namespaces no run claims. Runs of
// live processes are left alone, so two runs at once do not collide.
func DownAll(detached bool) (removed []string, err error) {
	runs, err := Runs()
	if err != nil {
		return nil, err
	}
	var errs []error
	claimed := map[string]bool{}
	for prefix, s := range runs {
		if s.unreadable || (s.alive() && (!s.Detached || !detached)) {
			for _, ns := range s.Namespaces {
				claimed[ns] = true
			}
			continue
		}
		if err := removeRun(s, false); err != nil {
			errs = append(errs, err)
		}
		removed = append(removed, prefix)
	}
	existing, err := listNamespaces()
	if err != nil {
		return removed, err
	}
	// A run registers each namespace before creating it, so a lab-named namespace that no
	// registered run claims was left by a run whose registry entry is gone.
	var orphans []string
	for _, ns := range existing {
		if !namePattern.MatchString(ns) || claimed[ns] {
			continue
		}
		if s, ok := runs[ns[:8]]; ok && !contains(removed, s.Prefix) {
			continue
		}
		// A run that registered after the registry was read above is not an orphan.
		if _, err := os.Stat(registryFile(ns[:8])); err == nil {
			continue
		}
		orphans = append(orphans, ns)
	}
	for _, ns := range orphans {
		if err := removeRun(state{Prefix: ns[:8], Namespaces: []string{ns}}, true); err != nil {
			errs = append(errs, err)
		}
		removed = append(removed, ns)
	}
	return removed, errors.Join(errs...)
}

var (
	signalMu   sync.Mutex
	signalLabs = map[*Lab]bool{}
	signalOnce sync.Once
)

// registerForSignals tears the lab down when the process gets SIGINT or SIGTERM.
func registerForSignals(l *Lab) {
	signalMu.Lock()
	defer signalMu.Unlock()
	signalLabs[l] = true
	signalOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			sig := <-ch
			fmt.Fprintf(os.Stderr, "lab: %v: tearing down\n", sig)
			signalMu.Lock()
			labs := make([]*Lab, 0, len(signalLabs))
			for l := range signalLabs {
				labs = append(labs, l)
			}
			signalMu.Unlock()
			for _, l := range labs {
				if err := l.Down(); err != nil {
					fmt.Fprintf(os.Stderr, "lab %s: %v\n", l.Prefix, err)
				}
			}
			os.Exit(130)
		}()
	})
}

func unregisterForSignals(l *Lab) {
	signalMu.Lock()
	defer signalMu.Unlock()
	delete(signalLabs, l)
}

// String describes the lab for people.
func (l *Lab) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s (run directory %s)\n", l.Prefix, l.RunDir)
	for _, m := range append([]*Member{l.ControlPlane, l.Client}, l.Nodes...) {
		if m == nil {
			continue
		}
		fmt.Fprintf(&b, "  %-8s netns %-18s %s  %s", m.Name, m.NS, m.IPv4, m.IPv6)
		if m.SecondIPv4.IsValid() {
			fmt.Fprintf(&b, "  %s %s  %s", SecondInterface, m.SecondIPv4, m.SecondIPv6)
		}
		b.WriteString("\n")
	}
	return b.String()
}
