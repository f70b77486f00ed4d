// Package chart_test renders the Helm chart and has a real kube-apiserver, kubeconform and
// the chart's own schema judge it.
package chart_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"vigil.dev/vigil/test/envtest"
	"vigil.dev/vigil/test/manifest"
)

func helm(t *testing.T, args ...string) string {
	t.Helper()
	var out, stderr bytes.Buffer
	cmd := exec.Command(envtest.Tool(t, "helm"), args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out.String()
}

func chartDir() string { return filepath.Join(envtest.RepoRoot(), "charts", "vigil") }

func render(t *testing.T, extra ...string) []*unstructured.Unstructured {
	t.Helper()
	out := helm(t, append([]string{"template", "vigil", chartDir(), "--namespace", "vigil-system", "--kube-version", "1.37.2"}, extra...)...)
	return decode(t, out)
}

func decode(t *testing.T, rendered string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := manifest.Decode(rendered)
	if err != nil {
		t.Fatalf("decoding rendered chart: %v", err)
	}
	return objs
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("chart renders no %s %s", kind, name)
	return nil
}

// podSpec returns the pod template of a Deployment or DaemonSet, typed.
func podSpec(t *testing.T, o *unstructured.Unstructured) corev1.PodSpec {
	t.Helper()
	m, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
	var spec corev1.PodSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &spec); err != nil {
		t.Fatal(err)
	}
	return spec
}

// everything renders every optional object too.
var everything = []string{"--set", "metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true,namespace.create=true"}

func TestChartLints(t *testing.T) {
	helm(t, "lint", "--strict", chartDir())
	helm(t, append([]string{"lint", "--strict", chartDir()}, everything...)...)
}

// The chart's values schema turns a mistyped value into an error at install time.
func TestValuesSchemaRejectsBadValues(t *testing.T) {
	for _, set := range []string{"agent.handover.timeout=10", "memberlist.port=70000", "controller.runAsUser=0",
		"agent.logLevel=verbose", "agent.bogus=1", "image.digest=latest"} {
		cmd := exec.Command(envtest.Tool(t, "helm"), "template", "vigil", chartDir(), "--set", set)
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("--set %s rendered; want a schema error", set)
		} else if !strings.Contains(string(out), "values don't meet the specifications of the schema") {
			t.Errorf("--set %s: %s", set, out)
		}
	}
}

// The API server accepts every object the chart renders, optional ones included (server-
// side dry run: the real schemas of Deployment, DaemonSet, RBAC, PodDisruptionBudget and,
// from the prometheus-operator CRDs, ServiceMonitor and PrometheusRule).
func TestRenderedChartIsAcceptedByTheAPIServer(t *testing.T) {
	ctx := context.Background()
	installMonitoringCRDs(t)
	objs := render(t, everything...)
	if len(objs) < 25 {
		t.Fatalf("chart rendered only %d objects", len(objs))
	}
	// The namespace first (for real: namespaced objects are dry-run inside it).
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			if err := env.Client.Create(ctx, o); err != nil {
				t.Fatalf("Namespace rejected: %v", err)
			}
		}
	}
	// Server-side apply: the CRDs exist already (envtest installed them), as on an upgrade.
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			continue
		}
		if err := env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.DryRunAll, client.FieldOwner("helm"), client.ForceOwnership); err != nil {
			t.Errorf("%s %s rejected: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

// installMonitoringCRDs installs the prometheus-operator CRDs that `make tools` fetched.
func installMonitoringCRDs(t *testing.T) {
	t.Helper()
	dir := os.Getenv("VIGIL_MONITORING_CRDS")
	if dir == "" {
		t.Fatal("VIGIL_MONITORING_CRDS is not set: run `make test`, which fetches the prometheus-operator CRDs (`make tools`)")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) != 2 {
		t.Fatalf("want the ServiceMonitor and PrometheusRule CRDs in %s, found %v", dir, files)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(b, crd); err != nil {
			t.Fatal(err)
		}
		crds = append(crds, crd)
	}
	if _, err := env.InstallCRDs(crds); err != nil {
		t.Fatal(err)
	}
}

// The chart's CRDs are the generated ones, with only Helm's keep policy and labels added.
func TestChartCRDsAreTheGeneratedOnes(t *testing.T) {
	objs := render(t)
	for _, name := range []string{"virtualips.vigil.dev", "nodeagents.vigil.dev"} {
		rendered := find(t, objs, "CustomResourceDefinition", name)
		if got := rendered.GetAnnotations()["helm.sh/resource-policy"]; got != "keep" {
			t.Errorf("%s: resource-policy %q, want keep (uninstalling must not delete every VirtualIP)", name, got)
		}
		b, err := os.ReadFile(filepath.Join(envtest.RepoRoot(), "config", "crd", "bases", "vigil.dev_"+strings.TrimSuffix(name, ".vigil.dev")+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var generated, got apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(b, &generated); err != nil {
			t.Fatal(err)
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(rendered.Object, &got); err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(got.Spec, generated.Spec) {
			t.Errorf("%s: the chart's CRD spec differs from config/crd/bases (run make manifests)", name)
		}
	}
	for _, o := range render(t, "--set", "crds.enabled=false") {
		if o.GetKind() == "CustomResourceDefinition" {
			t.Errorf("crds.enabled=false still renders %s", o.GetName())
		}
	}
}

func TestControllerRunsAsNonRootWithNothing(t *testing.T) {
	d := find(t, render(t), "Deployment", "vigil-controller")
	spec := podSpec(t, d)
	sc, c := spec.SecurityContext, spec.Containers[0]
	if sc.RunAsUser == nil || *sc.RunAsUser == 0 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("controller pod security context %+v: want an explicit non-root runAsUser", sc)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("controller seccomp %+v, want RuntimeDefault", sc.SeccompProfile)
	}
	csc := c.SecurityContext
	if len(csc.Capabilities.Add) != 0 || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		!*csc.ReadOnlyRootFilesystem || *csc.AllowPrivilegeEscalation {
		t.Errorf("controller container security context %+v: want every capability dropped, read-only root, no escalation", csc)
	}
}

func TestAgentRunsAsRootWithExactlyTheNetworkCapabilities(t *testing.T) {
	ds := find(t, render(t), "DaemonSet", "vigil-agent")
	spec := podSpec(t, ds)
	if !spec.HostNetwork {
		t.Error("agent is not on the host network, so it cannot bind node addresses")
	}
	sc, c := spec.SecurityContext, spec.Containers[0]
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Errorf("agent runAsUser %v, want an explicit 0 (the image has no USER; NET_ADMIN needs root)", sc.RunAsUser)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("agent seccomp %+v, want RuntimeDefault", sc.SeccompProfile)
	}
	csc := c.SecurityContext
	if !slices.Equal(csc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("agent capabilities %+v, want exactly NET_ADMIN and NET_RAW, all else dropped", csc.Capabilities)
	}
	if !*csc.ReadOnlyRootFilesystem || *csc.AllowPrivilegeEscalation {
		t.Errorf("agent container %+v: want a read-only root and no privilege escalation", csc)
	}
	if len(c.Env) == 0 || c.Env[0].Name != "NODE_NAME" || c.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("agent does not get NODE_NAME from the downward API: %v", c.Env)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists {
		t.Errorf("agent does not tolerate every taint by default: %v", spec.Tolerations)
	}
	if spec.PriorityClassName != "system-node-critical" {
		t.Errorf("agent priority class %q", spec.PriorityClassName)
	}
}

// The termination grace period follows the handover timeout, with room to release after.
func TestAgentGracePeriodFollowsTheHandoverTimeout(t *testing.T) {
	for timeout, want := range map[string]int64{"10s": 15, "1m30s": 95, "500ms": 6, "2m": 125} {
		spec := podSpec(t, find(t, render(t, "--set", "agent.handover.timeout="+timeout), "DaemonSet", "vigil-agent"))
		if got := *spec.TerminationGracePeriodSeconds; got != want {
			t.Errorf("handover timeout %s: grace period %ds, want %ds", timeout, got, want)
		}
		if !slices.Contains(spec.Containers[0].Args, "--handover-timeout="+timeout) {
			t.Errorf("handover timeout %s not passed to the agent: %v", timeout, spec.Containers[0].Args)
		}
	}
}

// Every named value reaches its flag, and extraArgs reach the command line.
func TestValuesReachTheFlags(t *testing.T) {
	objs := render(t, "--set", strings.Join([]string{
		"controller.leaderElection.leaseDuration=20s", "controller.agentHeartbeatTimeout=45s",
		"agent.fenceAfter=7s", "agent.heartbeatInterval=3s", "agent.handover.drain=0s",
		"memberlist.probeInterval=200ms", "memberlist.port=7999", "metrics.secure=false",
		"agent.extraArgs={--zap-devel}", "controller.extraArgs={--zap-devel}",
	}, ","))
	controller := podSpec(t, find(t, objs, "Deployment", "vigil-controller")).Containers[0].Args
	agent := podSpec(t, find(t, objs, "DaemonSet", "vigil-agent")).Containers[0].Args
	for _, want := range []string{"--leader-elect-lease-duration=20s", "--agent-heartbeat-timeout=45s", "--memberlist-probe-interval=200ms",
		"--memberlist-bind=:7999", "--metrics-secure=false", "--zap-devel"} {
		if !slices.Contains(controller, want) {
			t.Errorf("controller args %v lack %s", controller, want)
		}
	}
	for _, want := range []string{"--fence-after=7s", "--heartbeat-interval=3s", "--handover-drain=0s", "--memberlist-probe-interval=200ms",
		"--memberlist-bind=:7999", "--metrics-secure=false", "--zap-devel"} {
		if !slices.Contains(agent, want) {
			t.Errorf("agent args %v lack %s", agent, want)
		}
	}
	off := podSpec(t, find(t, render(t, "--set", "memberlist.enabled=false"), "DaemonSet", "vigil-agent")).Containers[0].Args
	if !slices.Contains(off, "--memberlist-bind=") {
		t.Errorf("memberlist.enabled=false: agent args %v do not turn memberlist off", off)
	}
}

// Every flag of both binaries is either set from a named value or documented as reachable
// through extraArgs: the list below is what a new flag must be added to.
func TestEveryFlagIsKnownToTheChart(t *testing.T) {
	byExtraArgs := map[string]bool{
		"kubeconfig": true, "node-name": true, "namespace": true, "leader-election-namespace": true, "memberlist-advertise": true,
		"metrics-cert-dir": true, "zap-devel": true, "zap-encoder": true, "zap-stacktrace-level": true, "zap-time-encoding": true,
		"pprof-bind-address": true,
	}
	objs := render(t)
	for cmd, kind := range map[string]string{"controller": "Deployment", "agent": "DaemonSet"} {
		args := podSpec(t, find(t, objs, kind, "vigil-"+cmd)).Containers[0].Args
		for _, flag := range vigilFlags(t, cmd) {
			set := slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--"+flag+"=") })
			if !set && !byExtraArgs[flag] {
				t.Errorf("vigil %s --%s is neither set by the chart nor listed as an extraArgs-only flag", cmd, flag)
			}
		}
	}
}

// vigilFlags lists the flags of `vigil CMD -h`.
func vigilFlags(t *testing.T, cmd string) []string {
	t.Helper()
	out, _ := exec.Command("go", "run", filepath.Join(envtest.RepoRoot(), "cmd", "vigil"), cmd, "-h").CombinedOutput()
	var flags []string
	for _, line := range strings.Split(string(out), "\n") {
		if f, ok := strings.CutPrefix(strings.TrimSpace(line), "-"); ok && strings.HasPrefix(line, "  -") {
			flags = append(flags, strings.Fields(f)[0])
		}
	}
	if len(flags) < 10 {
		t.Fatalf("vigil %s -h listed only %v:\n%s", cmd, flags, out)
	}
	return flags
}

func TestControllerIsSpreadAndProtected(t *testing.T) {
	objs := render(t)
	spec := podSpec(t, find(t, objs, "Deployment", "vigil-controller"))
	if spec.Affinity == nil || spec.Affinity.PodAntiAffinity == nil {
		t.Error("controller replicas are not spread over nodes by default")
	}
	if spec.PriorityClassName == "" {
		t.Error("controller has no priority class")
	}
	find(t, objs, "PodDisruptionBudget", "vigil-controller")
	for _, o := range render(t, "--set", "controller.replicas=1") {
		if o.GetKind() == "PodDisruptionBudget" {
			t.Error("a PodDisruptionBudget for a single replica would block every drain")
		}
	}
}

func TestServiceMonitorAndPrometheusRuleAreOptional(t *testing.T) {
	for _, o := range render(t) {
		if o.GetKind() == "ServiceMonitor" || o.GetKind() == "PrometheusRule" || o.GetKind() == "Namespace" {
			t.Errorf("%s rendered though it is off by default", o.GetKind())
		}
	}
	objs := render(t, everything...)
	find(t, objs, "ServiceMonitor", "vigil-controller")
	agent := find(t, objs, "ServiceMonitor", "vigil-agent")
	relabel, _, _ := unstructured.NestedSlice(agent.Object, "spec", "endpoints")
	if !strings.Contains(strings.Join(strings.Fields(toYAML(t, relabel)), " "), "targetLabel: node") {
		t.Errorf("agent ServiceMonitor does not label series with their node: %s", toYAML(t, relabel))
	}
	find(t, objs, "PrometheusRule", "vigil")
	ns := find(t, objs, "Namespace", "vigil-system")
	if ns.GetLabels()["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace labels %v: want PodSecurity enforce=privileged", ns.GetLabels())
	}
}

func toYAML(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The documented PodSecurity level is the right one: the controller passes "restricted",
// the agent needs "privileged" (the API server warns about it under "baseline").
func TestPodSecurityLevels(t *testing.T) {
	objs := render(t)
	for _, tc := range []struct {
		kind, name, level string
		warns             bool
	}{
		{"Deployment", "vigil-controller", "restricted", false},
		{"DaemonSet", "vigil-agent", "baseline", true},
		{"DaemonSet", "vigil-agent", "privileged", false},
	} {
		ns := "pss-" + tc.level
		if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Labels: map[string]string{"pod-security.kubernetes.io/warn": tc.level}}}); client.IgnoreAlreadyExists(err) != nil {
			t.Fatal(err)
		}
		o := find(t, objs, tc.kind, tc.name).DeepCopy()
		o.SetNamespace(ns)
		warnings := dryRunWarnings(t, o)
		if got := len(warnings) > 0; got != tc.warns {
			t.Errorf("%s %s in a %s namespace: warnings %q, want warnings=%v", tc.kind, tc.name, tc.level, warnings, tc.warns)
		}
	}
}

// dryRunWarnings creates o with a server-side dry run and returns the API server's warnings.
func dryRunWarnings(t *testing.T, o *unstructured.Unstructured) []string {
	t.Helper()
	cfg := *env.Config
	h := &warnings{}
	cfg.WarningHandler = h
	c, err := client.New(&cfg, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(context.Background(), o, client.DryRunAll); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return h.msgs
}

type warnings struct{ msgs []string }

func (w *warnings) HandleWarningHeader(_ int, _ string, msg string) { w.msgs = append(w.msgs, msg) }
