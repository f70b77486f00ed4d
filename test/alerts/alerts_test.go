// Package alerts_test checks the chart's PrometheusRule with promtool: the rules compile,
// and every alert fires when it should and stays quiet when it should not.
package alerts_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"vigil.dev/vigil/test/envtest"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(envtest.Tool(t, name), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out.String())
	}
	return out.String()
}

// renderRules writes the rule groups of the chart's PrometheusRule (default thresholds)
// as a Prometheus rules file into dir.
func renderRules(t *testing.T, dir string) string {
	t.Helper()
	manifest := run(t, "helm", "template", "vigil", filepath.Join(envtest.RepoRoot(), "charts", "vigil"), "--namespace", "vigil-system",
		"--kube-version", "1.37.2", "--set", "metrics.prometheusRule.enabled=true", "--show-only", "templates/prometheusrule.yaml")
	var rule struct {
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(manifest), &rule); err != nil {
		t.Fatal(err)
	}
	if len(rule.Spec.Groups) == 0 {
		t.Fatalf("the chart's PrometheusRule has no groups:\n%s", manifest)
	}
	b, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAlertRulesCompile(t *testing.T) {
	rules := renderRules(t, t.TempDir())
	t.Log(run(t, "promtool", "check", "rules", rules))
}

// alerts.test.yml fires and silences each alert; promtool test rules reads the rules file
// next to it, so both go into one directory.
func TestAlertRulesFireAndStayQuiet(t *testing.T) {
	dir := t.TempDir()
	renderRules(t, dir)
	tests, err := os.ReadFile(filepath.Join(envtest.RepoRoot(), "test", "alerts", "alerts.test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "alerts.test.yml")
	if err := os.WriteFile(path, tests, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log(run(t, "promtool", "test", "rules", path))
}
