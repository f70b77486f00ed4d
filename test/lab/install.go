package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// VigilNamespace is the namespace the lab installs Vigil into.
const VigilNamespace = "vigil-system"

// Installation is Vigil as `helm install` of charts/vigil put it into the lab's API server:
// the containers the chart rendered for the controller and the agents, run by the lab
// with exactly their arguments and environment, and with their ServiceAccounts' tokens
// (never the admin's; an agent's bound to its node's Pod), so that a gap in the chart's
// RBAC or admission policy fails here as it would in a cluster.
type Installation struct {
	Namespace  string
	Controller Workload
	Agent      Workload
	// Manifest is what helm installed (`helm get manifest`); Output what helm install said
	// (the chart's NOTES).
	Manifest string
	Output   string
}

// Workload is one of the chart's containers.
type Workload struct {
	// Args follow the binary: the subcommand ("controller", "agent") and its flags.
	Args []string
	Env  []corev1.EnvVar
	// ServiceAccount runs the workload; Kubeconfig holds its token from the TokenRequest API.
	// An agent has one per node instead, in Kubeconfigs: a token bound to the Pod the
	// DaemonSet would run there, as the kubelet gets it (the API server then names the
	// node in the agent's user info, which the chart's NodeAgent policy checks).
	ServiceAccount string
	Kubeconfig     string
	Kubeconfigs    map[string]string
	// Template is the chart's pod template.
	Template corev1.PodTemplateSpec
	// HealthPort serves /readyz, MetricsPort /metrics.
	HealthPort  int
	MetricsPort int
}

// InstallVigil installs Vigil with `helm install` of this tree's chart, run inside the
// control-plane namespace, with helmArgs added (e.g. "--set", "agent.fenceAfter=3s"). A lab
// holds one installation.
func (l *Lab) InstallVigil(ctx context.Context, helmArgs ...string) (*Installation, error) {
	l.installMu.Lock()
	defer l.installMu.Unlock()
	if l.installation != nil {
		return nil, errors.New("vigil is already installed in this lab")
	}
	helm, err := l.tool("helm")
	if err != nil {
		return nil, err
	}
	args := append([]string{"install", "vigil", filepath.Join(repoRoot(), "charts", "vigil"),
		"--namespace", VigilNamespace, "--kubeconfig", l.Kubeconfig}, helmArgs...)
	out, err := l.helm(helm, args...)
	if err != nil {
		return nil, fmt.Errorf("helm install: %w\n%s", err, out)
	}
	if err := l.waitForCRDs(ctx); err != nil {
		return nil, err
	}
	manifest, err := l.helm(helm, "get", "manifest", "vigil", "--namespace", VigilNamespace, "--kubeconfig", l.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("helm get manifest: %w\n%s", err, manifest)
	}
	inst := &Installation{Namespace: VigilNamespace, Manifest: manifest, Output: out}
	if inst.Controller, inst.Agent, err = workloads(manifest); err != nil {
		return nil, err
	}
	if inst.Controller.Kubeconfig, err = l.serviceAccountKubeconfig(ctx, inst.Controller.ServiceAccount, nil); err != nil {
		return nil, err
	}
	if inst.Agent.Kubeconfigs, err = l.agentKubeconfigs(ctx, &inst.Agent); err != nil {
		return nil, err
	}
	l.installation = inst
	l.logf("lab %s: vigil installed with helm install of charts/vigil", l.Prefix)
	return inst, nil
}

// Installation returns Vigil's installation, installing it with the chart's defaults
// first if nothing installed it yet.
func (l *Lab) Installation(ctx context.Context) (*Installation, error) {
	l.installMu.Lock()
	inst := l.installation
	l.installMu.Unlock()
	if inst != nil {
		return inst, nil
	}
	return l.InstallVigil(ctx)
}

// helm runs helm inside the control-plane namespace (the API server is only reachable
// there), with its caches in the run directory.
func (l *Lab) helm(helm string, args ...string) (string, error) {
	home := filepath.Join(l.RunDir, "helm")
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.ControlPlane.NS, helm}, args...)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// tool finds one of the tools `make tools` installs.
func (l *Lab) tool(name string) (string, error) {
	dir := l.ToolsBin
	if dir == "" {
		out, err := exec.Command(filepath.Join(repoRoot(), "hack", "tools.sh"), "bin-path").Output()
		if err != nil {
			return "", fmt.Errorf("finding the tools directory: %w", err)
		}
		dir = strings.TrimSpace(string(out))
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("the lab needs %s at %s: run `make tools`: %w", name, path, err)
	}
	return path, nil
}

// workloads finds the controller Deployment and the agent DaemonSet in a manifest.
func workloads(manifest string) (controller, agent Workload, err error) {
	objs, err := decodeManifest(manifest)
	if err != nil {
		return controller, agent, err
	}
	found := 0
	for _, u := range objs {
		var w *Workload
		switch u.GetKind() {
		case "Deployment":
			w = &controller
		case "DaemonSet":
			w = &agent
		default:
			continue
		}
		if *w, err = podTemplateWorkload(u); err != nil {
			return controller, agent, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
		found++
	}
	if found != 2 {
		return controller, agent, fmt.Errorf("the chart installed %d Deployments and DaemonSets, want the controller and the agent", found)
	}
	return controller, agent, nil
}

// podTemplateWorkload is the workload of a Deployment's or DaemonSet's pod template.
func podTemplateWorkload(u *unstructured.Unstructured) (Workload, error) {
	m, ok, err := unstructured.NestedMap(u.Object, "spec", "template")
	if err != nil {
		return Workload{}, fmt.Errorf("reading the pod template: %w", err)
	}
	if !ok {
		return Workload{}, errors.New("no pod template")
	}
	var template corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &template); err != nil {
		return Workload{}, err
	}
	w, err := workload(&template.Spec)
	w.Template = template
	return w, err
}

func workload(spec *corev1.PodSpec) (Workload, error) {
	if len(spec.Containers) != 1 {
		return Workload{}, fmt.Errorf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	w := Workload{Args: c.Args, Env: c.Env, ServiceAccount: spec.ServiceAccountName}
	for _, p := range c.Ports {
		switch p.Name {
		case "health":
			w.HealthPort = int(p.ContainerPort)
		case "metrics":
			w.MetricsPort = int(p.ContainerPort)
		}
	}
	if w.HealthPort == 0 {
		return w, errors.New("no container port named health")
	}
	return w, nil
}

// agentKubeconfigs creates, for every node, the Pod the agent DaemonSet would run there
// (the chart's pod template with spec.nodeName set; it stays Pending, nothing runs it)
// and writes a kubeconfig with a token bound to it, as the kubelet would request.
func (l *Lab) agentKubeconfigs(ctx context.Context, w *Workload) (map[string]string, error) {
	cs, err := l.clientset()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range l.Nodes {
		pod := &corev1.Pod{ObjectMeta: *w.Template.ObjectMeta.DeepCopy(), Spec: *w.Template.Spec.DeepCopy()}
		pod.Name, pod.Namespace, pod.Spec.NodeName = "vigil-agent-"+n.Name, VigilNamespace, n.Name
		created, err := cs.CoreV1().Pods(VigilNamespace).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("creating the agent Pod of %s: %w", n.Name, err)
		}
		ref := &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: created.Name, UID: created.UID}
		if out[n.Name], err = l.serviceAccountKubeconfig(ctx, w.ServiceAccount, ref); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (l *Lab) clientset() (*kubernetes.Clientset, error) {
	cfg, err := l.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// serviceAccountKubeconfig writes a kubeconfig with a token of the ServiceAccount, as a
// pod of it would get: from the TokenRequest API, valid for a day (longer than any run),
// bound to the pod when boundTo is set.
func (l *Lab) serviceAccountKubeconfig(ctx context.Context, sa string, boundTo *authenticationv1.BoundObjectReference) (string, error) {
	cs, err := l.clientset()
	if err != nil {
		return "", err
	}
	tr, err := cs.CoreV1().ServiceAccounts(VigilNamespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600), BoundObjectRef: boundTo},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token of ServiceAccount %s/%s: %w", VigilNamespace, sa, err)
	}
	name := sa
	if boundTo != nil {
		name = boundTo.Name
	}
	return l.WriteKubeconfig(name, tr.Status.Token)
}

// WriteKubeconfig writes RunDir/name.kubeconfig, for the lab's API server with a bearer
// token; ClientFor makes a client of it.
func (l *Lab) WriteKubeconfig(name, token string) (string, error) {
	cfg, err := l.RESTConfig()
	if err != nil {
		return "", err
	}
	kubeconfig := kubeconfigYAML(cfg.Host, filepath.Join(l.RunDir, "pki", "ca.crt"), name, fmt.Sprintf("{token: %q}", token))
	path := filepath.Join(l.RunDir, name+".kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// kubeconfigYAML is a kubeconfig for the lab's API server at server, whose certificate the
// CA in caFile signed, as the user named user with credentials, a YAML mapping of the
// kubeconfig's user fields (such as `{token: "..."}`).
func kubeconfigYAML(server, caFile, user, credentials string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: %q, certificate-authority: %q}
users:
- name: %s
  user: %s
contexts:
- name: lab
  context: {cluster: lab, user: %s}
current-context: lab
`, server, caFile, user, credentials, user)
}

// ClientFor is a client with the credentials of a kubeconfig of the lab (a workload's),
// dialling from inside the control-plane namespace.
func (l *Lab) ClientFor(kubeconfig string) (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", kubeconfig, err)
	}
	cfg.Dial = DialerIn(l.ControlPlane.NS)
	return client.New(cfg, client.Options{Scheme: Scheme})
}

// environ resolves the workload's environment for a process in member m, as the kubelet
// would for a pod there (the downward API fields the chart uses), plus KUBECONFIG with
// the ServiceAccount's token in place of the in-cluster configuration.
func (w *Workload) environ(m *Member, podName string) ([]string, error) {
	kubeconfig := w.Kubeconfig
	if w.Kubeconfigs != nil {
		if kubeconfig = w.Kubeconfigs[m.Name]; kubeconfig == "" {
			return nil, fmt.Errorf("no token of %s for %s: it runs on the lab's nodes only", w.ServiceAccount, m.Name)
		}
	}
	env := []string{"KUBECONFIG=" + kubeconfig}
	for _, e := range w.Env {
		v := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				return nil, fmt.Errorf("env %s: only fieldRef is emulated by the lab", e.Name)
			}
			switch e.ValueFrom.FieldRef.FieldPath {
			case "spec.nodeName":
				v = m.Name
			case "metadata.namespace":
				v = VigilNamespace
			case "metadata.name":
				v = podName
			case "status.podIP", "status.hostIP":
				v = m.IPv4.String()
			default:
				return nil, fmt.Errorf("env %s: field %s is not emulated by the lab", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		}
		env = append(env, e.Name+"="+v)
	}
	return env, nil
}

// args are the workload's arguments with $(VAR) references to its environment expanded,
// as the kubelet expands them ($$ escapes a $; an unknown reference stays as it is).
func (w *Workload) args(env []string) []string {
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	out := make([]string, len(w.Args))
	for i, a := range w.Args {
		out[i] = expand(a, vars)
	}
	return out
}

func expand(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '(':
			if end := strings.IndexByte(s[i:], ')'); end > 0 {
				if v, ok := vars[s[i+2:i+end]]; ok {
					b.WriteString(v)
					i += end
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// readyzURL is where the workload in member m answers /readyz.
func (w *Workload) readyzURL(m *Member) string {
	return "http://" + m.IPv4.String() + ":" + strconv.Itoa(w.HealthPort) + "/readyz"
}
