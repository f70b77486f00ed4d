package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// StartService starts the node's HTTP service (`labhelper serve-http`): port 80 on every
// address, answering with the node's name.
func (l *Lab) StartService(node string) error {
	n, err := l.Node(node)
	if err != nil {
		return err
	}
	_, err = l.startProcess(n.NS, n.Name+"/http", l.HelperBin, "serve-http", "--name", n.Name, "--port", fmt.Sprint(HTTPPort))
	return err
}

// StopService kills the node's HTTP service (the "service down" fault).
func (l *Lab) StopService(node string) error {
	p, ok := l.Process(node + "/http")
	if !ok {
		return fmt.Errorf("node %s runs no HTTP service", node)
	}
	return p.Kill()
}

// waitForService waits until the node's HTTP service answers from the client namespace.
func (l *Lab) waitForService(ctx context.Context, n *Member) error {
	url := fmt.Sprintf("http://%s/", net.JoinHostPort(n.IPv4.String(), fmt.Sprint(HTTPPort)))
	var last error
	for range 100 {
		body, err := l.Get(ctx, url, time.Second)
		if err == nil && body == n.Name {
			return nil
		}
		last = fmt.Errorf("answer %q, error: %w", body, err)
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("HTTP service of %s does not answer at %s: %w", n.Name, url, last)
}

// Get sends one GET from the client namespace and returns the body, trimmed.
func (l *Lab) Get(ctx context.Context, url string, timeout time.Duration) (string, error) {
	return l.GetFrom(ctx, "client", url, timeout)
}

// GetFrom sends one GET from a member's namespace and returns the body, trimmed.
func (l *Lab) GetFrom(ctx context.Context, member, url string, timeout time.Duration) (string, error) {
	m, err := l.member(member)
	if err != nil {
		return "", err
	}
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: DialerIn(m.NS), DisableKeepAlives: true,
	}}
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return strings.TrimSpace(string(body)), err
}

// Upload POSTs to url+"/upload" from the client a body trickled out in 10 parts over d, and
// returns the answer: a request whose connection carries client segments for all of d, so
// it fails if they reach a node that does not know the connection.
func (l *Lab) Upload(ctx context.Context, url string, d time.Duration) (string, error) {
	pr, pw := io.Pipe()
	go func() {
		for range 10 {
			if _, err := pw.Write(make([]byte, 1024)); err != nil {
				return
			}
			time.Sleep(d / 10)
		}
		_ = pw.Close()
	}()
	hc := &http.Client{Timeout: d + 5*time.Second, Transport: &http.Transport{
		DialContext: DialerIn(l.Client.NS), DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(url, "/")+"/upload", pr)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		_ = pr.CloseWithError(err)
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return strings.TrimSpace(string(body)), err
}

// CrashNode kills every process in the node's namespace with SIGKILL and takes its links
// down (eth0, and eth1 on the second network): what a power cut looks like from the rest
// of the network. Until RestoreNode nothing the lab supervises (a controller replica) is
// restarted there.
func (l *Lab) CrashNode(node string) error {
	n, err := l.Node(node)
	if err != nil {
		return err
	}
	l.setCrashed(node, true)
	if _, err := ip("-n", n.NS, "link", "set", NodeInterface, "down"); err != nil {
		return err
	}
	if l.secondNetwork {
		if _, err := ip("-n", n.NS, "link", "set", SecondInterface, "down"); err != nil {
			return err
		}
	}
	return killNamespace(n.NS)
}

// RestoreNode brings a crashed node's links back with its routes and restarts its HTTP
// service, and the controller replicas the lab runs there. Other processes (agents) are
// the caller's to restart.
func (l *Lab) RestoreNode(node string) error {
	n, err := l.Node(node)
	if err != nil {
		return err
	}
	if err := l.SetLink(node, true); err != nil {
		return err
	}
	if l.secondNetwork {
		if _, err := ip("-n", n.NS, "link", "set", SecondInterface, "up"); err != nil {
			return err
		}
	}
	if err := l.StartService(node); err != nil {
		return err
	}
	l.setCrashed(node, false)
	return l.waitForService(context.Background(), n)
}

func (l *Lab) setCrashed(node string, crashed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if crashed {
		l.crashed[node] = true
	} else {
		delete(l.crashed, node)
	}
}

// Crashed reports whether the member is a node that CrashNode took down and RestoreNode
// has not brought back.
func (l *Lab) Crashed(member string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.crashed[member]
}

// SetLink sets the node's lab interface up or down (routes are restored on up).
func (l *Lab) SetLink(node string, up bool) error {
	n, err := l.Node(node)
	if err != nil {
		return err
	}
	state := map[bool]string{true: "up", false: "down"}[up]
	if _, err := ip("-n", n.NS, "link", "set", NodeInterface, state); err != nil {
		return err
	}
	if up {
		if _, err := ip("-n", n.NS, "route", "replace", "default", "via", GatewayV4.String()); err != nil {
			return err
		}
		if _, err := ip("-n", n.NS, "-6", "route", "replace", "default", "via", GatewayV6.String()); err != nil {
			return err
		}
	}
	return nil
}

// FlapLink takes the node's link down for d, then up again.
func (l *Lab) FlapLink(node string, d time.Duration) error {
	if err := l.SetLink(node, false); err != nil {
		return err
	}
	time.Sleep(d)
	return l.SetLink(node, true)
}

const partitionTable = "vigil_partition"

// Partition drops all bridged traffic between the groups of members (node names, "cp",
// "client"); members in no group talk to everyone. It replaces any earlier partition.
func (l *Lab) Partition(groups ...[]string) error {
	for _, g := range groups {
		for _, m := range g {
			if _, err := l.member(m); err != nil {
				return err
			}
		}
	}
	var rules strings.Builder
	for i, a := range groups {
		for j, b := range groups {
			if i != j {
				fmt.Fprintf(&rules, "    iifname { %s } oifname { %s } drop\n", quoteAll(a), quoteAll(b))
			}
		}
	}
	script := fmt.Sprintf(`table bridge %[1]s
delete table bridge %[1]s
table bridge %[1]s {
  chain forward {
    type filter hook forward priority 0; policy accept;
%[2]s  }
}
`, partitionTable, rules.String())
	return l.nft(script)
}

// Heal removes the partition.
func (l *Lab) Heal() error {
	return l.nft(fmt.Sprintf("table bridge %[1]s\ndelete table bridge %[1]s\n", partitionTable))
}

func (l *Lab) nft(script string) error {
	cmd := []string{"netns", "exec", l.BridgeNS, "nft", "-f", "-"}
	return runStdin(script, "ip", cmd...)
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// StarveCPU starts n busy-looping processes (`labhelper burn`) that stop by themselves
// after d.
func (l *Lab) StarveCPU(n int, d time.Duration) ([]*Process, error) {
	if n < 1 || n > 16 || d <= 0 || d > 10*time.Minute {
		return nil, fmt.Errorf("CPU starvation is bounded: 1..16 burners for at most 10m, not %d for %v", n, d)
	}
	var procs []*Process
	for i := range n {
		p, err := l.startProcess(l.BridgeNS, fmt.Sprintf("burner-%d-%d", time.Now().UnixNano(), i), l.HelperBin, "burn", "--for", d.String())
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
	}
	return procs, nil
}

// maxBurnersPerNode bounds StarveNodes: 64 busy loops per node (192 on a 3-node lab) is
// already far past what any node of a real cluster runs beside its agent.
const maxBurnersPerNode = 64

// StarveNodes starts perNode busy loops on every node for d: one burner process
// (`labhelper burn --threads perNode`) in each node's namespace, each loop an OS thread of
// its own, stopping by itself after d. Nodes share the machine's cores (and cgroup) with
// each other and with the control plane, so the nodes' burners starve all of them at once:
// perNode × nodes loops in all (bounded: 1..64 per node, at most 10m).
func (l *Lab) StarveNodes(perNode int, d time.Duration) ([]*Process, error) {
	if perNode < 1 || perNode > maxBurnersPerNode || d <= 0 || d > 10*time.Minute {
		return nil, fmt.Errorf("CPU starvation is bounded: 1..%d burners per node for at most 10m, not %d for %v", maxBurnersPerNode, perNode, d)
	}
	var procs []*Process
	for _, n := range l.Nodes {
		p, err := l.startProcess(n.NS, fmt.Sprintf("%s/burner-%d", n.Name, time.Now().UnixNano()), l.HelperBin, "burn",
			"--for", d.String(), "--threads", fmt.Sprint(perNode))
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
	}
	return procs, nil
}
