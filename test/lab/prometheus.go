package lab

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"vigil.dev/vigil/test/manifest"
)

// PrometheusPort is where the lab's Prometheus answers, on the control-plane address.
const PrometheusPort = 9090

// Prometheus is Debian's prometheus running in the control-plane namespace, scraping the
// controller and every agent the way the chart's ServiceMonitors tell the Prometheus
// Operator to (HTTPS with a ServiceAccount's token, the same relabelling), with the chart's
// PrometheusRule loaded as its rules.
type Prometheus struct {
	URL string
	// Token may get /metrics (its ServiceAccount is bound to the chart's metrics-reader).
	Token string
	ns    string
}

// StartPrometheus starts Prometheus for an installation rendered with
// metrics.serviceMonitor.enabled (and, for the alerts, metrics.prometheusRule.enabled).
func (l *Lab) StartPrometheus(ctx context.Context, inst *Installation, scrapeInterval time.Duration) (*Prometheus, error) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return nil, fmt.Errorf("the lab's Prometheus is Debian's prometheus package (`make tools` installs it): %w", err)
	}
	objs, err := decodeManifest(inst.Manifest)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(l.RunDir, "prometheus")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	token, err := l.MetricsToken(ctx)
	if err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		return nil, err
	}
	cfg, rules, err := l.prometheusConfig(objs, tokenFile, scrapeInterval)
	if err != nil {
		return nil, err
	}
	for name, body := range map[string][]byte{"prometheus.yml": cfg, "rules.yml": rules} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			return nil, err
		}
	}
	listen := fmt.Sprintf("%s:%d", l.ControlPlane.IPv4, PrometheusPort)
	p, err := l.StartProcess("cp", "prometheus", bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+listen, "--log.level=warn")
	if err != nil {
		return nil, err
	}
	prom := &Prometheus{URL: "http://" + listen, Token: token, ns: l.ControlPlane.NS}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := prom.get(ctx, "/-/ready"); err == nil {
			return prom, nil
		} else if time.Now().After(deadline) || !p.Running() {
			return nil, fmt.Errorf("prometheus not ready: %w\n%s", err, p.LogTail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// decodeManifest reads the objects of the manifest helm installed.
func decodeManifest(installed string) ([]*unstructured.Unstructured, error) {
	objs, err := manifest.Decode(installed)
	if err != nil {
		return nil, fmt.Errorf("reading the installed manifest: %w", err)
	}
	return objs, nil
}

// MetricsToken returns a token that may scrape Vigil's metrics: of a ServiceAccount
// "prometheus" bound to the chart's metrics reader ClusterRole, as the install guide says
// (made on first use).
func (l *Lab) MetricsToken(ctx context.Context) (string, error) {
	l.installMu.Lock()
	defer l.installMu.Unlock()
	if l.metricsToken != "" {
		return l.metricsToken, nil
	}
	if l.installation == nil {
		return "", errors.New("vigil is not installed in this lab")
	}
	objs, err := decodeManifest(l.installation.Manifest)
	if err != nil {
		return "", err
	}
	token, err := l.scraperToken(ctx, objs)
	l.metricsToken = token
	return token, err
}

// scraperToken makes the ServiceAccount and its binding and returns a token of it.
func (l *Lab) scraperToken(ctx context.Context, objs []*unstructured.Unstructured) (string, error) {
	reader := ""
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" && strings.HasSuffix(o.GetName(), "-metrics-reader") {
			reader = o.GetName()
		}
	}
	if reader == "" {
		return "", errors.New("the installation has no metrics-reader ClusterRole (metrics.secure=false?)")
	}
	cfg, err := l.RESTConfig()
	if err != nil {
		return "", err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "prometheus", Namespace: VigilNamespace}}
	if _, err := cs.CoreV1().ServiceAccounts(VigilNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-vigil-metrics"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: VigilNamespace}}}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	tr, err := cs.CoreV1().ServiceAccounts(VigilNamespace).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

// prometheusConfig translates the ServiceMonitors into scrape jobs whose targets are the
// lab's processes, labelled as Kubernetes service discovery would label their pods, and
// the PrometheusRule into a rules file.
func (l *Lab) prometheusConfig(objs []*unstructured.Unstructured, tokenFile string, interval time.Duration) (cfg, rules []byte, err error) {
	var jobs []map[string]any
	var groups []any
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceMonitor":
			job, err := l.scrapeJob(o, objs, tokenFile, interval)
			if err != nil {
				return nil, nil, err
			}
			jobs = append(jobs, job)
		case "PrometheusRule":
			g, _, _ := unstructured.NestedSlice(o.Object, "spec", "groups")
			groups = append(groups, g...)
		}
	}
	if len(jobs) == 0 {
		return nil, nil, errors.New("the installation has no ServiceMonitor (metrics.serviceMonitor.enabled=false?)")
	}
	cfg, err = yaml.Marshal(map[string]any{
		"global":         map[string]any{"scrape_interval": interval.String(), "evaluation_interval": interval.String()},
		"rule_files":     []string{"rules.yml"},
		"scrape_configs": jobs,
	})
	if err != nil {
		return nil, nil, err
	}
	rules, err = yaml.Marshal(map[string]any{"groups": groups})
	return cfg, rules, err
}

// scrapeJob is what the Prometheus Operator makes of one ServiceMonitor endpoint: its
// scheme, credentials and TLS settings, and its relabelings after the operator's own
// (job from the Service, namespace, pod).
func (l *Lab) scrapeJob(sm *unstructured.Unstructured, objs []*unstructured.Unstructured, tokenFile string, interval time.Duration) (map[string]any, error) {
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		return nil, fmt.Errorf("ServiceMonitor %s: %d endpoints, the lab handles 1", sm.GetName(), len(endpoints))
	}
	ep := endpoints[0].(map[string]any)
	component := sm.GetLabels()["app.kubernetes.io/component"]
	service := ""
	for _, o := range objs {
		if o.GetKind() == "Service" && o.GetLabels()["app.kubernetes.io/component"] == component {
			service = o.GetName()
		}
	}
	members := []*Member{l.ControlPlane}
	w := &l.installation.Controller
	if component == "agent" {
		members, w = l.Nodes, &l.installation.Agent
	}
	var targets []any
	for _, m := range members {
		targets = append(targets, map[string]any{
			"targets": []string{fmt.Sprintf("%s:%d", m.IPv4, w.MetricsPort)},
			"labels": map[string]string{
				"__meta_kubernetes_namespace":     VigilNamespace,
				"__meta_kubernetes_service_name":  service,
				"__meta_kubernetes_pod_name":      "vigil-" + component + "-" + m.Name,
				"__meta_kubernetes_pod_node_name": nodeOf(m),
			},
		})
	}
	relabel := []any{
		map[string]any{"source_labels": []string{"__meta_kubernetes_service_name"}, "target_label": "job"},
		map[string]any{"source_labels": []string{"__meta_kubernetes_namespace"}, "target_label": "namespace"},
		map[string]any{"source_labels": []string{"__meta_kubernetes_pod_name"}, "target_label": "pod"},
	}
	relabelings, _, _ := unstructured.NestedSlice(ep, "relabelings")
	for _, r := range relabelings {
		relabel = append(relabel, snakeKeys(r.(map[string]any)))
	}
	job := map[string]any{
		"job_name":        fmt.Sprintf("serviceMonitor/%s/%s/0", sm.GetNamespace(), sm.GetName()),
		"scrape_interval": interval.String(),
		"static_configs":  targets,
		"relabel_configs": relabel,
	}
	if scheme, _, _ := unstructured.NestedString(ep, "scheme"); scheme != "" {
		job["scheme"] = scheme
	}
	if _, ok, _ := unstructured.NestedString(ep, "bearerTokenFile"); ok {
		job["authorization"] = map[string]any{"credentials_file": tokenFile}
	}
	if skip, ok, _ := unstructured.NestedBool(ep, "tlsConfig", "insecureSkipVerify"); ok {
		job["tls_config"] = map[string]any{"insecure_skip_verify": skip}
	}
	return job, nil
}

// nodeOf is the node a member's pod would run on. The lab's controller runs on no lab
// node, but in a cluster it runs on one: it gets a node name too, so that a relabelling
// that would clobber its series' own node label (the owner) shows here.
func nodeOf(m *Member) string {
	if strings.HasPrefix(m.Name, "node-") {
		return m.Name
	}
	return "control-plane-node"
}

// snakeKeys turns a ServiceMonitor relabeling (sourceLabels, targetLabel) into Prometheus's
// relabel_config spelling (source_labels, target_label).
func snakeKeys(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		var b strings.Builder
		for _, r := range k {
			if r >= 'A' && r <= 'Z' {
				b.WriteByte('_')
				r += 'a' - 'A'
			}
			b.WriteRune(r)
		}
		out[b.String()] = v
	}
	return out
}

// PromSample is one series of a query result.
type PromSample struct {
	Labels map[string]string
	Value  float64
}

// Query runs an instant PromQL query.
func (p *Prometheus) Query(ctx context.Context, promql string) ([]PromSample, error) {
	body, err := p.get(ctx, "/api/v1/query?query="+neturl.QueryEscape(promql))
	if err != nil {
		return nil, err
	}
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("query %s: %w", promql, err)
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", promql, resp.Error)
	}
	var out []PromSample
	for _, r := range resp.Data.Result {
		var v float64
		if s, ok := r.Value[1].(string); ok {
			_, _ = fmt.Sscan(s, &v)
		}
		out = append(out, PromSample{Labels: r.Metric, Value: v})
	}
	return out, nil
}

// Rules returns the health of every rule Prometheus evaluates ("ok", "err", "unknown").
func (p *Prometheus) Rules(ctx context.Context) (map[string]string, error) {
	body, err := p.get(ctx, "/api/v1/rules")
	if err != nil {
		return nil, err
	}
	var resp struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, g := range resp.Data.Groups {
		for _, r := range g.Rules {
			out[r.Name] = strings.TrimSpace(r.Health + " " + r.LastError)
		}
	}
	return out, nil
}

func (p *Prometheus) get(ctx context.Context, path string) ([]byte, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: DialerIn(p.ns)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnprocessableEntity {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, nil
}

// ScrapeMetrics fetches a workload's /metrics as Prometheus does (HTTPS with the token when
// the endpoint is secure), from the control-plane namespace.
func (l *Lab) ScrapeMetrics(ctx context.Context, m *Member, w *Workload, secure bool, token string) (string, error) {
	tr := &http.Transport{DialContext: DialerIn(l.ControlPlane.NS)}
	scheme := "http"
	if secure {
		scheme = "https"
		// The endpoint's certificate is self-signed, as the chart's ServiceMonitor expects.
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the lab's own self-signed endpoint
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s:%d/metrics", scheme, m.IPv4, w.MetricsPort), nil)
	if err != nil {
		return "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return string(b), nil
}

// InstallMonitoringCRDs installs the prometheus-operator ServiceMonitor and PrometheusRule
// CRDs (fetched by `make tools`), so that the chart's monitoring objects can be installed.
func (l *Lab) InstallMonitoringCRDs(ctx context.Context) error {
	dir := os.Getenv("VIGIL_MONITORING_CRDS")
	if dir == "" {
		out, err := exec.Command(filepath.Join(repoRoot(), "hack", "tools.sh"), "crds-path").Output()
		if err != nil {
			return fmt.Errorf("finding the prometheus-operator CRDs: %w", err)
		}
		dir = strings.TrimSpace(string(out))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) == 0 {
		return fmt.Errorf("no prometheus-operator CRDs in %s: run `make tools`", dir)
	}
	for _, f := range files {
		if out, err := l.Kubectl("apply", "--server-side", "-f", f); err != nil {
			return fmt.Errorf("installing %s: %w\n%s", f, err, out)
		}
	}
	out, err := l.Kubectl("wait", "--for=condition=Established", "--timeout=30s",
		"crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com")
	if err != nil {
		return fmt.Errorf("waiting for the prometheus-operator CRDs: %w\n%s", err, out)
	}
	return nil
}
