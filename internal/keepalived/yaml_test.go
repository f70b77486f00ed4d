package keepalived

import (
	"testing"

	"sigs.k8s.io/yaml"
)

// Every string is written so that YAML reads it back as the same string, plain when it can
// be and quoted when YAML would read something else (a number, boolean, null or syntax).
func TestYAMLStringsReadBack(t *testing.T) {
	plain := []string{"vi-1", "eth0", "Always", "HTTP", "10.0.0.1", "fd00::10", "2001:db8::1", "1s", "1m30s", "100ms",
		"/healthz", "kubernetes.io/hostname", "node-a.example.com", "yesterday", "nullable"}
	quoted := []string{"", "yes", "No", "on", "OFF", "y", "null", "true", "False", "~", "1", "1e3", "0x10", "0o17", "1:20",
		".5", "-1", "::1", "/readyz?verbose", "a b", "a: b", "#x", "x:", "caf\u00e9", "*a", "&a", "!a", "[a]", "{a}", "'a'", `"a"`}
	for _, s := range append(plain, quoted...) {
		written := yamlString(s)
		var back map[string]any
		if err := yaml.Unmarshal([]byte("k: "+written), &back); err != nil {
			t.Errorf("%q written as %s does not parse: %v", s, written, err)
			continue
		}
		if got, ok := back["k"].(string); !ok || got != s {
			t.Errorf("%q written as %s reads back as %#v", s, written, back["k"])
		}
	}
	for _, s := range plain {
		if yamlString(s) != s {
			t.Errorf("%q is quoted (%s), want plain", s, yamlString(s))
		}
	}
	for _, s := range quoted[1:] {
		if yamlString(s) == s {
			t.Errorf("%q is written plain, want quoted", s)
		}
	}
}
