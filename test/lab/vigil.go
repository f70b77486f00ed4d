package lab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	p, err := l.pod(l.ControlPlane, "vigil-controller", controllerWorkload)
	if err != nil {
		return nil, err
	}
	return l.superviseController(p.m, "cp/vigil-controller", p.env, p.argv(vigil, args...))
}

// podProcess is how the lab runs a pod of one of the chart's workloads: in a member's
// namespace, with the environment and the arguments (the chart's, expanded) the pod
// would have there.
type podProcess struct {
	m    *Member
	env  []string
	args []string
}

// argv runs vigil with the pod's arguments and extra ones after them.
func (p podProcess) argv(vigil string, extra ...string) []string {
	return append(append([]string{vigil}, p.args...), extra...)
}

func controllerWorkload(inst *Installation) *Workload { return &inst.Controller }

func agentWorkload(inst *Installation) *Workload { return &inst.Agent }

// pod is the process of a pod named name of the installed workload (which picks it),
// running in member m.
func (l *Lab) pod(m *Member, name string, which func(*Installation) *Workload) (podProcess, error) {
	inst, err := l.Installation(context.Background())
	if err != nil {
		return podProcess{}, err
	}
	w := which(inst)
	env, err := w.environ(m, name)
	if err != nil {
		return podProcess{}, err
	}
	return podProcess{m: m, env: env, args: w.args(env)}, nil
}

// nodePod is pod on the node named node.
func (l *Lab) nodePod(node, name string, which func(*Installation) *Workload) (podProcess, error) {
	m, err := l.Node(node)
	if err != nil {
		return podProcess{}, err
	}
	return l.pod(m, name, which)
}

// NodeControllerMemberlistPort is the memberlist port of a controller replica the lab runs
// in a node's namespace. A controller pod has a network namespace of its own; the lab's
// replica shares the node's with the node's agent, which holds the chart's port there.
const NodeControllerMemberlistPort = 7953

// podNamePattern: a replica's pod name is also its hostname.
var podNamePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// StartControllerReplica runs one replica of the chart's controller Deployment as if its
// pod ran on node: in the node's network namespace, so that it dies with the node
// (CrashNode); with POD_IP the node's address, which memberlist advertises; with the pod
// name as hostname (in a UTS namespace of its own), which names the replica in memberlist
// and in the leader Lease as in a cluster; with the controller ServiceAccount's token; and
// with its memberlist on NodeControllerMemberlistPort. Start several, on distinct nodes,
// for a Deployment's replicas: its process is "<node>/<pod>". Like StartController it is
// restarted when it exits, but not while its node is crashed (RestoreNode brings it back).
func (l *Lab) StartControllerReplica(vigil, node, pod string, args ...string) (stop func(), err error) {
	if !podNamePattern.MatchString(pod) {
		return nil, fmt.Errorf("controller replica name %q is not a pod name", pod)
	}
	p, err := l.nodePod(node, pod, controllerWorkload)
	if err != nil {
		return nil, err
	}
	chartArgs := p.args
	for i, a := range chartArgs {
		// The chart's port, unless the chart turned memberlist off ("--memberlist-bind=").
		if host, ok := strings.CutPrefix(a, "--memberlist-bind="); ok && host != "" {
			chartArgs[i] = "--memberlist-bind=:" + strconv.Itoa(NodeControllerMemberlistPort)
		}
	}
	// unshare execs sh, which execs vigil once the hostname is set: the process the lab
	// supervises and signals is the controller itself.
	argv := append([]string{"unshare", "--uts", "--", "sh", "-c", `hostname "$0" && exec "$@"`, pod, vigil}, chartArgs...)
	return l.superviseController(p.m, node+"/"+pod, p.env, append(argv, args...))
}

// superviseController starts a controller replica as process name in member m and, like
// the kubelet, starts it again a second after it exits, unless m is a crashed node, until
// the lab is torn down or stop is called.
func (l *Lab) superviseController(m *Member, name string, env, argv []string) (stop func(), err error) {
	l.mu.Lock()
	for other, om := range l.controllers {
		if om == m && other != name {
			l.mu.Unlock()
			return nil, fmt.Errorf("%s already runs controller %s: two would share its ports", m.Name, other)
		}
	}
	l.controllers[name] = m
	l.mu.Unlock()
	forget := func() {
		l.mu.Lock()
		delete(l.controllers, name)
		l.mu.Unlock()
	}
	start := func() (*Process, error) { return l.startProcessEnv(m.NS, name, env, argv...) }
	p, err := start()
	if err != nil {
		forget()
		return nil, err
	}
	stopped := make(chan struct{})
	go l.keepRunning(p, m.Name, start, stopped)
	var once sync.Once
	return func() {
		once.Do(func() { close(stopped) })
		forget()
		if cur, ok := l.Process(name); ok {
			_ = cur.Stop(10 * time.Second)
		}
	}, nil
}

// keepRunning restarts p with start a second after each exit, waiting while member is a
// crashed node, until stopped is closed or the lab refuses to start processes.
func (l *Lab) keepRunning(p *Process, member string, start func() (*Process, error), stopped <-chan struct{}) {
	for {
		select {
		case <-stopped:
			return
		case <-p.Done():
		}
		wait := time.Second
		for {
			select {
			case <-stopped:
				return
			case <-time.After(wait):
			}
			if !l.Crashed(member) {
				break
			}
			wait = 100 * time.Millisecond
		}
		next, err := start()
		if err != nil {
			return // the lab is going down
		}
		p = next
	}
}

// ControllerLeader is the holder of the controller's leader Lease ("" when none): the
// leader's hostname, "_", a random suffix. A replica of StartControllerReplica's hostname
// is its pod name.
func (l *Lab) ControllerLeader(ctx context.Context) (string, error) {
	c, err := l.KubeClient()
	if err != nil {
		return "", err
	}
	var lease coordinationv1.Lease
	if err := c.Get(ctx, client.ObjectKey{Namespace: VigilNamespace, Name: controllerLease}, &lease); err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}

// controllerLease is the name of the controller's leader Lease, controllers.LeaderElectionID
// (which the lab cannot import: the controllers' tests import the lab).
const controllerLease = "vigil-controller.vigil.dev"

// StartAgent runs `vigil agent` on a node as the chart's DaemonSet runs it (its args and
// env, its ServiceAccount), with args added.
func (l *Lab) StartAgent(vigil, node string, args ...string) (*Process, error) {
	p, err := l.nodePod(node, "vigil-agent-"+node, agentWorkload)
	if err != nil {
		return nil, err
	}
	return l.startProcessEnv(p.m.NS, node+"/vigil-agent", p.env, p.argv(vigil, args...)...)
}

// WaitForVigil waits until the controller leads (holds its Lease) and is Ready, every
// node's agent is Ready (its /readyz: API cache synced, memberlist running) and has
// reported its memberlist address, and the controller has had time to join them (it
// rejoins every second): before that, a dead node is only noticed by its heartbeat.
// Installed with memberlist off, every agent has reported its NodeAgent instead.
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
		leaseErr := c.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: controllerLease}, &lease)
		agentsErr := c.List(ctx, &agents)
		gossiping := 0
		for _, a := range agents.Items {
			if a.Status.MemberlistAddress != "" {
				gossiping++
			}
		}
		joined := gossiping == len(l.Nodes) || (!inst.Agent.Memberlist() && len(agents.Items) == len(l.Nodes))
		readyErr := l.vigilReady(ctx, inst)
		if leaseErr == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" &&
			agentsErr == nil && joined && readyErr == nil {
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

// vigilReady asks every controller replica's (the control plane's when the lab started
// none) and every agent's /readyz, as the kubelet would.
func (l *Lab) vigilReady(ctx context.Context, inst *Installation) error {
	var errs []error
	controllers := l.liveControllers()
	if len(controllers) == 0 {
		controllers = map[string]*Member{"controller": l.ControlPlane}
	}
	for name, m := range controllers {
		if err := l.Ready(ctx, m, &inst.Controller); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
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

// liveControllers are the running controller replicas, by process name, but those on
// crashed nodes.
func (l *Lab) liveControllers() map[string]*Member {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]*Member{}
	for name, m := range l.controllers {
		if !l.crashed[m.Name] {
			out[name] = m
		}
	}
	return out
}

// Memberlist reports whether the workload runs memberlist: the chart passes an empty
// --memberlist-bind when memberlist.enabled is false.
func (w *Workload) Memberlist() bool {
	for _, a := range w.Args {
		if v, ok := strings.CutPrefix(a, "--memberlist-bind="); ok {
			return v != ""
		}
	}
	return false
}

// DeleteNode deletes the node's Node object, as `kubectl delete node` does when a node
// leaves the cluster for good; its namespace and processes stay (stop them first).
func (l *Lab) DeleteNode(ctx context.Context, node string) error {
	if _, err := l.Node(node); err != nil {
		return err
	}
	c, err := l.KubeClient()
	if err != nil {
		return err
	}
	if err := c.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}); err != nil {
		return fmt.Errorf("deleting Node %s: %w", node, err)
	}
	return nil
}
