// Package chart_test renders the Helm chart and has a real kube-apiserver validate it.
package chart_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"vigil.dev/vigil/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) {
	os.Exit(envtest.Run(m, func(e *envtest.Env) { env = e }))
}

func helm(t *testing.T, args ...string) string {
	t.Helper()
	bin := os.Getenv("VIGIL_TOOLS_BIN")
	if bin == "" {
		t.Fatal("VIGIL_TOOLS_BIN is not set: run `make test`, which installs helm (`make tools`)")
	}
	var out, stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(bin, "helm"), args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out.String()
}

func render(t *testing.T, extra ...string) []*unstructured.Unstructured {
	t.Helper()
	chart := filepath.Join(envtest.RepoRoot(), "charts", "vigil")
	out := helm(t, append([]string{"template", "vigil", chart, "--namespace", "vigil-system", "--kube-version", "1.37.2"}, extra...)...)
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(out), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("decoding rendered chart: %v", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
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

func TestChartLints(t *testing.T) {
	helm(t, "lint", "--strict", filepath.Join(envtest.RepoRoot(), "charts", "vigil"))
}

// The API server accepts every object the chart renders (server-side dry run, so the real
// schemas of Deployment, DaemonSet, RBAC and Service are applied).
func TestRenderedChartIsAcceptedByTheAPIServer(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "vigil-system"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	objs := render(t)
	if len(objs) < 10 {
		t.Fatalf("chart rendered only %d objects", len(objs))
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o, client.DryRunAll); err != nil {
			t.Errorf("%s %s rejected: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

func TestAgentRunsOnEveryNodeWithTheNetworkCapabilitiesItNeeds(t *testing.T) {
	ds := find(t, render(t), "DaemonSet", "vigil-agent")
	spec, _, _ := unstructured.NestedMap(ds.Object, "spec", "template", "spec")
	if spec["hostNetwork"] != true {
		t.Error("agent is not on the host network, so it cannot bind node addresses")
	}
	containers, _, _ := unstructured.NestedSlice(spec, "containers")
	agent := containers[0].(map[string]any)
	caps, _, _ := unstructured.NestedStringSlice(agent, "securityContext", "capabilities", "add")
	if strings.Join(caps, ",") != "NET_ADMIN,NET_RAW" {
		t.Errorf("agent capabilities %v, want NET_ADMIN and NET_RAW", caps)
	}
	env, _, _ := unstructured.NestedSlice(agent, "env")
	if len(env) == 0 || env[0].(map[string]any)["name"] != "NODE_NAME" {
		t.Errorf("agent does not get NODE_NAME from the downward API: %v", env)
	}
	tolerations, _, _ := unstructured.NestedSlice(spec, "tolerations")
	if len(tolerations) != 1 || tolerations[0].(map[string]any)["operator"] != "Exists" {
		t.Errorf("agent does not tolerate every taint by default: %v", tolerations)
	}
}

func TestServiceMonitorIsOptional(t *testing.T) {
	for _, o := range render(t) {
		if o.GetKind() == "ServiceMonitor" {
			t.Fatal("ServiceMonitor rendered though metrics.serviceMonitor.enabled is false")
		}
	}
	objs := render(t, "--set", "metrics.serviceMonitor.enabled=true")
	find(t, objs, "ServiceMonitor", "vigil-controller")
	find(t, objs, "ServiceMonitor", "vigil-agent")
}
