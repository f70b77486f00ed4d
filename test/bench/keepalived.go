package bench

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"vigil.dev/vigil/test/lab"
)

// Keepalived runs keepalived (Debian's package) on every lab node as the baseline Vigil is
// measured against: one VRRP instance holding the VIP, priorities 150, 100, 50, ... in node
// order, default preemption, and a vrrp_script that tracks the node's HTTP service with a
// TCP connect, like Vigil's TCP health check.
type Keepalived struct {
	// Tuned selects VRRPv3 with advert_int 0.1 and a 0.1 s check (through a tracked file);
	// otherwise VRRPv2 with advert_int 1 and a 1 s vrrp_script. Both use fall 3, rise 1.
	Tuned bool
	VIP   netip.Addr
}

// Name is the system's name in benchmark tables.
func (k *Keepalived) Name() string {
	if k.Tuned {
		return "keepalived-tuned"
	}
	return "keepalived-default"
}

// Settle covers a restored node's rejoining: its first check result (one check interval)
// and a preemption after the next advertisement, plus the master-down interval
// (3 advertisements) of a node that came back as backup.
func (k *Keepalived) Settle() time.Duration {
	if k.Tuned {
		return 2 * time.Second
	}
	return 6 * time.Second
}

// NeedsControlPlane is false: keepalived knows nothing of Kubernetes.
func (k *Keepalived) NeedsControlPlane() bool { return false }

func (k *Keepalived) config(l *lab.Lab, node *lab.Member, priority int, stateFile string) string {
	// keepalived 2.2 (Debian 12) takes vrrp_script intervals in whole seconds only, so the
	// tuned profile tracks a file instead: a helper probes every 0.1 s with fall 3 / rise 1
	// and writes 0 (up) or 1 (down); keepalived watches the file with inotify.
	version, advert, check, track := 2, "1", fmt.Sprintf(`vrrp_script chk_http {
  script "%s check-tcp --addr 127.0.0.1:%d --timeout 1s"
  interval 1
  timeout 1
  fall 3
  rise 1
}`, l.HelperBin, lab.HTTPPort), "track_script {\n    chk_http\n  }"
	if k.Tuned {
		version, advert = 3, "0.1"
		check = fmt.Sprintf("vrrp_track_file chk_http {\n  file %s\n  weight 0\n}", stateFile)
		track = "track_file {\n    chk_http\n  }"
	}
	return fmt.Sprintf(`global_defs {
  router_id %[1]s
  vrrp_version %[2]d
  enable_script_security
  script_user root
}
%[3]s
vrrp_instance VI_1 {
  state BACKUP
  interface %[4]s
  virtual_router_id 51
  priority %[5]d
  advert_int %[6]s
  virtual_ipaddress {
    %[7]s/32 dev %[4]s
  }
  %[8]s
}
`, node.Name, version, check, lab.NodeInterface, priority, advert, k.VIP, track)
}

// StartNode writes the node's configuration and starts keepalived there.
func (k *Keepalived) StartNode(l *lab.Lab, node string) error {
	n, err := l.Node(node)
	if err != nil {
		return err
	}
	priority := 150
	for i, m := range l.Nodes {
		if m.Name == node {
			priority = 150 - 50*i
		}
	}
	priority = max(priority, 1)
	dir := filepath.Join(l.RunDir, "keepalived", node)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(dir, "keepalived.conf")
	stateFile := filepath.Join(dir, "http.state")
	if err := os.WriteFile(conf, []byte(k.config(l, n, priority, stateFile)), 0o644); err != nil {
		return err
	}
	if p, ok := l.Process(node + "/http-tracker"); k.Tuned && (!ok || !p.Running()) {
		if err := os.WriteFile(stateFile, []byte("1\n"), 0o644); err != nil {
			return err
		}
		if _, err := l.StartProcess(node, "http-tracker", l.HelperBin, "track-tcp",
			"--addr", fmt.Sprintf("127.0.0.1:%d", lab.HTTPPort), "--every", "100ms", "--fall", "3", "--rise", "1", "--file", stateFile); err != nil {
			return err
		}
	}
	// A crashed keepalived leaves its pid files behind; if a new process got one of those
	// PIDs, keepalived would refuse to start ("daemon is already running").
	pidFiles := []string{"keepalived.pid", "vrrp.pid", "checkers.pid"}
	for _, f := range pidFiles {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	p, err := l.StartProcess(node, "keepalived", "keepalived", "--dont-fork", "--log-console", "--log-detail",
		"--vrrp", "--use-file="+conf,
		"--pid="+filepath.Join(dir, pidFiles[0]),
		"--vrrp_pid="+filepath.Join(dir, pidFiles[1]),
		"--checkers_pid="+filepath.Join(dir, pidFiles[2]))
	if err != nil {
		return err
	}
	select {
	case <-p.Done():
		return fmt.Errorf("keepalived on %s exited at start: %w\n%s", node, p.Err(), p.LogTail(5))
	case <-time.After(200 * time.Millisecond):
		return nil
	}
}

// StopNode stops keepalived on the node gracefully (SIGTERM): as master it sends a
// priority-0 advertisement, so a backup takes over at once.
func (k *Keepalived) StopNode(l *lab.Lab, node string) error {
	p, ok := l.Process(node + "/keepalived")
	if !ok {
		return fmt.Errorf("keepalived is not running on %s", node)
	}
	return p.Stop(10 * time.Second)
}

// Start runs keepalived on every node.
func (k *Keepalived) Start(l *lab.Lab) error {
	var errs []string
	for _, n := range l.Nodes {
		if err := k.StartNode(l, n.Name); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("starting keepalived: %s", strings.Join(errs, "; "))
	}
	return nil
}
