package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// repoRoot is the root of the Vigil source tree.
func repoRoot() string {
	return filepath.Join(filepath.Dir(thisFile()), "..", "..")
}

// installCRDs creates Vigil's CRDs from config/crd/bases and waits until they are served.
func (l *Lab) installCRDs(ctx context.Context) error {
	c, err := l.KubeClient()
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(repoRoot(), "config", "crd", "bases", "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no CRDs under %s", filepath.Join(repoRoot(), "config", "crd", "bases"))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(b, crd); err != nil {
			return fmt.Errorf("reading CRD %s: %w", f, err)
		}
		if err := c.Create(ctx, crd); err != nil {
			return fmt.Errorf("creating CRD %s: %w", crd.Name, err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if err := c.Get(ctx, client.ObjectKeyFromObject(crd), crd); err != nil {
				return err
			}
			if cond := findCRDCondition(crd, apiextensionsv1.Established); cond {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not established after 30s", crd.Name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func findCRDCondition(crd *apiextensionsv1.CustomResourceDefinition, t apiextensionsv1.CustomResourceDefinitionConditionType) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == t && c.Status == apiextensionsv1.ConditionTrue {
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

// StartController runs `vigil controller` in the control-plane namespace and, like the
// Deployment's kubelet would, restarts it whenever it exits (it exits when it loses its
// leader lease, e.g. in an API outage) until the lab is torn down or the returned stop
// function is called.
func (l *Lab) StartController(vigil string, args ...string) (stop func(), err error) {
	argv := append([]string{vigil, "controller", "--kubeconfig", l.Kubeconfig,
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--memberlist-advertise=" + l.ControlPlane.IPv4.String()}, args...)
	p, err := l.StartProcess("cp", "vigil-controller", argv...)
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
			next, err := l.StartProcess("cp", "vigil-controller", argv...)
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

// StartAgent runs `vigil agent` on a node.
func (l *Lab) StartAgent(vigil, node string, args ...string) (*Process, error) {
	argv := append([]string{vigil, "agent", "--kubeconfig", l.Kubeconfig, "--node-name", node,
		"--metrics-bind-address=0", "--health-probe-bind-address=0"}, args...)
	return l.StartProcess(node, "vigil-agent", argv...)
}

// WaitForVigil waits until the controller leads (holds its Lease), every node's agent has
// reported in with its memberlist address, and the controller has had time to join them
// (it rejoins every second): before that, a dead node is only noticed by its heartbeat.
func (l *Lab) WaitForVigil(timeout time.Duration) error {
	c, err := l.KubeClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		var lease coordinationv1.Lease
		var agents vigilv1.NodeAgentList
		leaseErr := c.Get(ctx, client.ObjectKey{Namespace: "vigil-system", Name: "vigil-controller.vigil.dev"}, &lease)
		agentsErr := c.List(ctx, &agents)
		gossiping := 0
		for _, a := range agents.Items {
			if a.Status.MemberlistAddress != "" {
				gossiping++
			}
		}
		if leaseErr == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" &&
			agentsErr == nil && gossiping == len(l.Nodes) {
			time.Sleep(2 * time.Second)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vigil not ready after %v: %d of %d agents reported, lease: %w", timeout, len(agents.Items), len(l.Nodes), errors.Join(leaseErr, agentsErr))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
