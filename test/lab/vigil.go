package lab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// repoRoot is the root of the Vigil source tree.
func repoRoot() string {
	return filepath.Join(filepath.Dir(thisFile()), "..", "..")
}

// waitForCRDs waits until Vigil's CRDs are served (helm installs them without waiting).
func (l *Lab) waitForCRDs(ctx context.Context) error {
	c, err := l.KubeClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, name := range []string{"virtualips.vigil.dev", "nodeagents.vigil.dev"} {
		for {
			var crd apiextensionsv1.CustomResourceDefinition
			err := c.Get(ctx, client.ObjectKey{Name: name}, &crd)
			if err == nil && crdEstablished(&crd) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("CRD %s not established after 30s: %w", name, errors.Join(err, ctx.Err()))
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func crdEstablished(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}

// Kubectl runs kubectl (from the assets) against the lab's API server and returns its
// combined output.
func (l *Lab) Kubectl(args ...string) (string, error) {
	argv := append([]string{"--kubeconfig", l.Kubeconfig}, args...)
	return inNSCombined(l.ControlPlane.NS, filepath.Join(l.Assets, "kubectl"), argv...)
}

// BuildVigil builds bin/vigil from this source tree into the run directory.
func (l *Lab) BuildVigil() (string, error) {
	out := filepath.Join(l.RunDir, "vigil")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/vigil")
	cmd.Dir = repoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building vigil: %w\n%s", err, b)
	}
	return out, nil
}

// StartController runs `vigil controller` in the control-plane namespace as the chart's
// Deployment runs it (its args and env, its ServiceAccount), with args added. Like the
// kubelet, it restarts it whenever it exits (it exits when it loses its leader lease, e.g.
// in an API outage) until the lab is torn down or the returned stop function is called.
func (l *Lab) StartController(vigil string, args ...string) (stop func(), err error) {
	inst, err := l.Installation(context.Background())
	if err != nil {
		return nil, err
	}
	env, err := inst.Controller.environ(l.ControlPlane, "vigil-controller")
	if err != nil {
		return nil, err
	}
	argv := append(append([]string{vigil}, inst.Controller.args(env)...), args...)
	start := func() (*Process, error) {
		return l.startProcessEnv(l.ControlPlane.NS, "cp/vigil-controller", env, argv...)
	}
	p, err := start()
	if err != nil {
		return nil, err
	}
	stopped := make(chan struct{})
	var once sync.Once
	go func() {
		for {
			select {
			case <-stopped:
				return
			case <-p.Done():
			}
			select {
			case <-stopped:
				return
			case <-time.After(time.Second):
			}
			next, err := start()
			if err != nil {
				return // the lab is going down
			}
			p = next
		}
	}()
	return func() {
		once.Do(func() { close(stopped) })
		if cur, ok := l.Process("cp/vigil-controller"); ok {
			_ = cur.Stop(10 * time.Second)
		}
	}, nil
}

// StartAgent runs `vigil agent` on a node as the chart's DaemonSet runs it (its args and
// env, its ServiceAccount), with args added.
func (l *Lab) StartAgent(vigil, node string, args ...string) (*Process, error) {
	inst, err := l.Installation(context.Background())
	if err != nil {
		return nil, err
	}
	m, err := l.Node(node)
	if err != nil {
		return nil, err
	}
	env, err := inst.Agent.environ(m, "vigil-agent-"+node)
	if err != nil {
		return nil, err
	}
	argv := append(append([]string{vigil}, inst.Agent.args(env)...), args...)
	return l.startProcessEnv(m.NS, node+"/vigil-agent", env, argv...)
}

// WaitForVigil waits until the controller leads (holds its Lease) and is Ready, every
// node's agent is Ready (its /readyz: API cache synced, memberlist running) and has
// reported its memberlist address, and the controller has had time to join them (it
// rejoins every second): before that, a dead node is only noticed by its heartbeat.
func (l *Lab) WaitForVigil(timeout time.Duration) error {
	c, err := l.KubeClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	inst, err := l.Installation(ctx)
	if err != nil {
		return err
	}
	for {
		var lease coordinationv1.Lease
		var agents vigilv1.NodeAgentList
		leaseErr := c.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: "vigil-controller.vigil.dev"}, &lease)
		agentsErr := c.List(ctx, &agents)
		gossiping := 0
		for _, a := range agents.Items {
			if a.Status.MemberlistAddress != "" {
				gossiping++
			}
		}
		readyErr := l.vigilReady(ctx, inst)
		if leaseErr == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" &&
			agentsErr == nil && gossiping == len(l.Nodes) && readyErr == nil {
			time.Sleep(2 * time.Second)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vigil not ready after %v: %d of %d agents reported, lease: %w", timeout, len(agents.Items), len(l.Nodes),
				errors.Join(leaseErr, agentsErr, readyErr))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// vigilReady asks the controller's and every agent's /readyz, as the kubelet would.
func (l *Lab) vigilReady(ctx context.Context, inst *Installation) error {
	var errs []error
	if err := l.Ready(ctx, l.ControlPlane, &inst.Controller); err != nil {
		errs = append(errs, fmt.Errorf("controller: %w", err))
	}
	for _, n := range l.Nodes {
		if err := l.Ready(ctx, n, &inst.Agent); err != nil {
			errs = append(errs, fmt.Errorf("agent on %s: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Ready reports whether the workload running in member m answers its readiness probe.
func (l *Lab) Ready(ctx context.Context, m *Member, w *Workload) error {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: DialerIn(m.NS)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.readyzURL(m), nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	return nil
}
