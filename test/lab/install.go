package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// VigilNamespace is the namespace the lab installs Vigil into.
const VigilNamespace = "vigil-system"

// Installation is Vigil as `helm install` of charts/vigil put it into the lab's API server:
// the containers the chart rendered for the controller and the agents, run by the lab
// with exactly their arguments and environment, and with their ServiceAccounts' tokens
// (never the admin's), so that a gap in the chart's RBAC fails here as it would in a
// cluster.
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
	ServiceAccount string
	Kubeconfig     string
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
	for _, w := range []*Workload{&inst.Controller, &inst.Agent} {
		if w.Kubeconfig, err = l.serviceAccountKubeconfig(ctx, w.ServiceAccount); err != nil {
			return nil, err
		}
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
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	found := 0
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return controller, agent, fmt.Errorf("reading the installed manifest: %w", err)
		}
		var spec *corev1.PodSpec
		switch u.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
				return controller, agent, err
			}
			spec = &d.Spec.Template.Spec
			controller, err = workload(spec)
		case "DaemonSet":
			var d appsv1.DaemonSet
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
				return controller, agent, err
			}
			spec = &d.Spec.Template.Spec
			agent, err = workload(spec)
		default:
			continue
		}
		if err != nil {
			return controller, agent, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
		found++
	}
	if found != 2 {
		return controller, agent, fmt.Errorf("the chart installed %d Deployments and DaemonSets, want the controller and the agent", found)
	}
	return controller, agent, nil
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

// serviceAccountKubeconfig writes a kubeconfig with a token of the ServiceAccount, as a
// pod of it would get: from the TokenRequest API, valid for a day (longer than any run).
func (l *Lab) serviceAccountKubeconfig(ctx context.Context, sa string) (string, error) {
	cfg, err := l.RESTConfig()
	if err != nil {
		return "", err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	tr, err := cs.CoreV1().ServiceAccounts(VigilNamespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token of ServiceAccount %s/%s: %w", VigilNamespace, sa, err)
	}
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: %q, certificate-authority: %q}
users:
- name: %s
  user: {token: %q}
contexts:
- name: lab
  context: {cluster: lab, user: %s}
current-context: lab
`, cfg.Host, filepath.Join(l.RunDir, "pki", "ca.crt"), sa, tr.Status.Token, sa)
	path := filepath.Join(l.RunDir, sa+".kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// environ resolves the workload's environment for a process in member m, as the kubelet
// would for a pod there (the downward API fields the chart uses), plus KUBECONFIG with
// the ServiceAccount's token in place of the in-cluster configuration.
func (w *Workload) environ(m *Member, podName string) ([]string, error) {
	env := []string{"KUBECONFIG=" + w.Kubeconfig}
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

// readyzURL is where the workload in member m answers /readyz.
func (w *Workload) readyzURL(m *Member) string {
	return "http://" + m.IPv4.String() + ":" + strconv.Itoa(w.HealthPort) + "/readyz"
}
