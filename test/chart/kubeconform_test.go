package chart_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"vigil.dev/vigil/test/envtest"
)

// kubeconform checks custom resources offline against JSON schemas made from their CRDs:
// Vigil's own (the samples users start from) and prometheus-operator's (the chart's
// ServiceMonitors and PrometheusRule). Built-in kinds are left to the API server's dry run.
func TestKubeconformAgainstTheCRDSchemas(t *testing.T) {
	schemas := t.TempDir()
	crdFiles, _ := filepath.Glob(filepath.Join(envtest.RepoRoot(), "config", "crd", "bases", "*.yaml"))
	monitoring, _ := filepath.Glob(filepath.Join(os.Getenv("VIGIL_MONITORING_CRDS"), "*.yaml"))
	if len(crdFiles) != 2 || len(monitoring) != 2 {
		t.Fatalf("want Vigil's 2 CRDs and prometheus-operator's 2 (VIGIL_MONITORING_CRDS, set by make test), got %v and %v", crdFiles, monitoring)
	}
	for _, f := range append(crdFiles, monitoring...) {
		writeJSONSchemas(t, f, schemas)
	}

	// Custom resources only: the samples and the chart's optional monitoring objects.
	docs := t.TempDir()
	samples, _ := filepath.Glob(filepath.Join(envtest.RepoRoot(), "config", "samples", "*.yaml"))
	for _, f := range samples {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(docs, filepath.Base(f)), b)
	}
	for _, o := range render(t, everything...) {
		if o.GetKind() == "ServiceMonitor" || o.GetKind() == "PrometheusRule" {
			writeFile(t, filepath.Join(docs, strings.ToLower(o.GetKind()+"-"+o.GetName())+".yaml"), []byte(toYAML(t, o.Object)))
		}
	}
	kubeconform(t, schemas, docs, true)

	// And it rejects what the schemas forbid: a misspelt field, a value outside an enum, a
	// number out of range. (What only CEL can judge, like a CIDR in address, is left to the
	// API server.)
	for name, spec := range map[string]string{
		"typo":     "{addr: 198.18.1.10}",
		"enum":     "{address: 198.18.1.10, preemption: Sometimes}",
		"range":    "{address: 198.18.1.10, priorities: [{nodeSelector: {}, priority: 300}]}",
		"nocheck":  "{address: 198.18.1.10, healthChecks: [{name: web, tcp: {port: 0}}]}",
		"badcount": "{address: 198.18.1.10, announce: {count: many}}",
	} {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, name+".yaml"), []byte("apiVersion: vigil.dev/v1alpha1\nkind: VirtualIP\nmetadata: {name: "+name+"}\nspec: "+spec+"\n"))
		kubeconform(t, schemas, dir, false)
	}
}

func kubeconform(t *testing.T, schemas, dir string, wantValid bool) {
	t.Helper()
	cmd := exec.Command(envtest.Tool(t, "kubeconform"), "-summary", "-verbose",
		"-schema-location", filepath.Join(schemas, "{{ .Group }}", "{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"), dir)
	out, err := cmd.CombinedOutput()
	t.Logf("kubeconform %s:\n%s", dir, out)
	if wantValid && err != nil {
		t.Errorf("kubeconform rejected %s: %v", dir, err)
	}
	if !wantValid && err == nil {
		t.Errorf("kubeconform accepted %s, which holds invalid objects", dir)
	}
}

// writeJSONSchemas turns every version of a CRD into the JSON schema kubeconform reads at
// <dir>/<group>/<kind>_<version>.json, closed where the CRD is structural (an unknown
// field is an error, as `kubectl apply` with strict field validation makes it).
func writeJSONSchemas(t *testing.T, file, dir string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(b, &crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for _, v := range crd.Spec.Versions {
		raw, err := json.Marshal(v.Schema.OpenAPIV3Schema)
		if err != nil {
			t.Fatal(err)
		}
		var schema map[string]any
		if err := json.Unmarshal(raw, &schema); err != nil {
			t.Fatal(err)
		}
		closeObjects(schema, true)
		out, err := json.MarshalIndent(schema, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		name := strings.ToLower(crd.Spec.Names.Kind) + "_" + v.Name + ".json"
		writeFile(t, filepath.Join(dir, crd.Spec.Group, name), out)
	}
}

// closeObjects forbids properties a schema does not name, except where the CRD keeps
// unknown fields, and in metadata (whose schema a CRD leaves to the API server).
func closeObjects(s map[string]any, top bool) {
	props, ok := s["properties"].(map[string]any)
	if ok && s["x-kubernetes-preserve-unknown-fields"] != true && s["additionalProperties"] == nil {
		s["additionalProperties"] = false
	}
	for name, p := range props {
		if pm, ok := p.(map[string]any); ok && (!top || name != "metadata") {
			closeObjects(pm, false)
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		closeObjects(items, false)
	}
	if ap, ok := s["additionalProperties"].(map[string]any); ok {
		closeObjects(ap, false)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
