package lab

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// Scheme has the types the lab and its tests read and write.
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(vigilv1.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	return s
}()

func init() {
	// The lab's API clients log nothing of interest; without a logger controller-runtime
	// complains on first use.
	ctrllog.SetLogger(logr.Discard())
}

// NodeLabel marks the Node objects of a lab; its value is the node's name.
const NodeLabel = "vigil.dev/lab-node"

// startControlPlane runs etcd and kube-apiserver in the control-plane namespace, writes an
// admin kubeconfig, installs Vigil's CRDs and creates a Node object per lab node.
func (l *Lab) startControlPlane(ctx context.Context) error {
	admin, err := l.makeCertificates()
	if err != nil {
		return err
	}
	etcd, err := l.startEtcd()
	if err != nil {
		return err
	}
	apiserver, err := l.startAPIServer()
	if err != nil {
		return err
	}
	if err := l.writeAdminKubeconfig(admin); err != nil {
		return err
	}
	if err := l.waitForAPIServer(ctx, etcd, apiserver); err != nil {
		return err
	}
	return l.createNodes(ctx)
}

func (l *Lab) pkiDir() string { return filepath.Join(l.RunDir, "pki") }

// keyPair is a PEM certificate and its key.
type keyPair struct{ cert, key []byte }

// makeCertificates makes the lab's throwaway CA, kube-apiserver's serving certificate and
// the ServiceAccount signing keys in the PKI directory, and returns the admin's client
// certificate.
func (l *Lab) makeCertificates() (admin keyPair, err error) {
	pkiDir := l.pkiDir()
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return admin, err
	}
	ca, err := newPKI(pkiDir)
	if err != nil {
		return admin, fmt.Errorf("making lab CA: %w", err)
	}
	cp := l.ControlPlane
	servingCert, servingKey, err := ca.issue("kube-apiserver", nil,
		[]net.IP{cp.IPv4.AsSlice(), cp.IPv6.AsSlice(), net.IPv4(127, 0, 0, 1)},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"})
	if err != nil {
		return admin, err
	}
	if admin.cert, admin.key, err = ca.issue("vigil-lab-admin", []string{"system:masters"}, nil, nil); err != nil {
		return admin, err
	}
	files := map[string][]byte{"apiserver.crt": servingCert, "apiserver.key": servingKey}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(pkiDir, name), data, 0o600); err != nil {
			return admin, err
		}
	}
	return admin, writeKeyPair(filepath.Join(pkiDir, "sa.key"), filepath.Join(pkiDir, "sa.pub"))
}

// startEtcd runs etcd on the control plane's loopback, without fsync (a lab's data is
// thrown away).
func (l *Lab) startEtcd() (*Process, error) {
	return l.startProcess(l.ControlPlane.NS, "cp/etcd", filepath.Join(l.Assets, "etcd"),
		"--name=lab", "--data-dir="+filepath.Join(l.RunDir, "etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=lab=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level=warn")
}

// startAPIServer runs kube-apiserver on ControlPlaneV4:APIServerPort, with the audit log
// when the lab was configured with one.
func (l *Lab) startAPIServer() (*Process, error) {
	pkiDir := l.pkiDir()
	args := []string{
		"--etcd-servers=http://127.0.0.1:2379",
		"--bind-address=::", fmt.Sprintf("--secure-port=%d", APIServerPort),
		"--advertise-address=" + l.ControlPlane.IPv4.String(), "--endpoint-reconciler-type=none",
		"--cert-dir=" + pkiDir,
		"--tls-cert-file=" + filepath.Join(pkiDir, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(pkiDir, "apiserver.key"),
		"--client-ca-file=" + filepath.Join(pkiDir, "ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + filepath.Join(pkiDir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(pkiDir, "sa.key"),
		"--service-cluster-ip-range=198.19.255.0/24",
		"--authorization-mode=Node,RBAC",
		"--enable-priority-and-fairness=false",
	}
	if l.auditLog {
		audit, err := l.auditArgs()
		if err != nil {
			return nil, err
		}
		args = append(args, audit...)
	}
	return l.startProcess(l.ControlPlane.NS, "cp/kube-apiserver", append([]string{filepath.Join(l.Assets, "kube-apiserver")}, args...)...)
}

// writeAdminKubeconfig writes the admin kubeconfig (l.Kubeconfig) and records it in the
// run's state.
func (l *Lab) writeAdminKubeconfig(admin keyPair) error {
	cp := l.ControlPlane
	server := fmt.Sprintf("https://%s", net.JoinHostPort(cp.IPv4.String(), fmt.Sprint(APIServerPort)))
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: %q, certificate-authority: %q}
users:
- name: admin
  user: {client-certificate-data: %q, client-key-data: %q}
contexts:
- name: lab
  context: {cluster: lab, user: admin}
current-context: lab
`, server, filepath.Join(l.pkiDir(), "ca.crt"), b64(admin.cert), b64(admin.key))
	l.Kubeconfig = filepath.Join(l.RunDir, "kubeconfig")
	if err := os.WriteFile(l.Kubeconfig, []byte(kubeconfig), 0o600); err != nil {
		return err
	}
	l.state.Kubeconfig = l.Kubeconfig
	return l.saveState()
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// RESTConfig is the admin configuration, dialling from inside the control-plane namespace
// so that the host needs no route into the lab.
func (l *Lab) RESTConfig() (*rest.Config, error) {
	if l.Kubeconfig == "" {
		return nil, fmt.Errorf("lab %s has no control plane", l.Prefix)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", l.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading lab kubeconfig: %w", err)
	}
	cfg.Dial = DialerIn(l.ControlPlane.NS)
	cfg.QPS, cfg.Burst = 200, 400
	return cfg, nil
}

// KubeClient is a controller-runtime client with admin rights on the lab's API server.
func (l *Lab) KubeClient() (client.Client, error) {
	cfg, err := l.RESTConfig()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: Scheme})
}

func (l *Lab) waitForAPIServer(ctx context.Context, procs ...*Process) error {
	cfg, err := l.RESTConfig()
	if err != nil {
		return err
	}
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: cfg.Dial, TLSClientConfig: tlsCfg.Clone(),
	}}
	var last error
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range procs {
			if !p.Running() {
				return fmt.Errorf("%s exited during start-up: %w\n%s", p.Name, p.Err(), p.LogTail(20))
			}
		}
		resp, err := hc.Get(cfg.Host + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("readyz: %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("kube-apiserver not ready after 90s: %w\n%s", last, procs[len(procs)-1].LogTail(20))
}

// createNodes makes a Node object per lab node, labelled like a real node, with its
// addresses in status, plus Vigil's namespace at the PodSecurity level its install guide
// asks for.
func (l *Lab) createNodes(ctx context.Context) error {
	c, err := l.KubeClient()
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: VigilNamespace,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}}}
	if err := c.Create(ctx, ns); err != nil {
		return fmt.Errorf("creating namespace %s: %w", VigilNamespace, err)
	}
	for _, n := range l.Nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name: n.Name,
			Labels: map[string]string{
				"kubernetes.io/hostname": n.Name,
				"kubernetes.io/os":       "linux",
				NodeLabel:                n.Name,
			},
		}}
		if err := c.Create(ctx, node); err != nil {
			return fmt.Errorf("creating Node %s: %w", n.Name, err)
		}
		node.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.IPv4.String()},
			{Type: corev1.NodeInternalIP, Address: n.IPv6.String()},
			{Type: corev1.NodeHostName, Address: n.Name},
		}
		node.Status.Conditions = []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "LabNode",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}}
		if err := c.Status().Update(ctx, node); err != nil {
			return fmt.Errorf("setting status of Node %s: %w", n.Name, err)
		}
	}
	return nil
}

// APIServer is the kube-apiserver process (for outages: SIGSTOP / SIGCONT).
func (l *Lab) APIServer() (*Process, error) {
	p, ok := l.Process("cp/kube-apiserver")
	if !ok {
		return nil, fmt.Errorf("lab %s runs no kube-apiserver", l.Prefix)
	}
	return p, nil
}

// RestartAPIServer starts kube-apiserver again, with the same arguments, after it was
// killed (`APIServer().Kill()`: the "API server restart" outage, where clients are refused
// instead of left hanging as by SIGSTOP), and waits until it answers /readyz.
func (l *Lab) RestartAPIServer(ctx context.Context) error {
	etcd, ok := l.Process("cp/etcd")
	if !ok {
		return fmt.Errorf("lab %s runs no etcd", l.Prefix)
	}
	if old, err := l.APIServer(); err != nil {
		return err
	} else if old.Running() {
		return errors.New("kube-apiserver is still running: kill it first")
	}
	apiserver, err := l.startAPIServer()
	if err != nil {
		return err
	}
	return l.waitForAPIServer(ctx, etcd, apiserver)
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
