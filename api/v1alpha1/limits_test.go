package v1alpha1_test

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/test/envtest"
)

func TestTruncate(t *testing.T) {
	cases := []struct {
		s     string
		limit int
		want  string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven long", 10, "eleven…"}, // 7 bytes (the space dropped) and a 3-byte ellipsis
		{"ééééé", 8, "éé…"},            // never half a character
		{"ééééé", 9, "ééé…"},
		{"abcdef", 2, "ab"}, // no room for the ellipsis
		{"éé", 3, "…"},
		{"abc", 0, ""},
	}
	for _, tc := range cases {
		got := vigilv1.Truncate(tc.s, tc.limit)
		if got != tc.want || len(got) > tc.limit || !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.s, tc.limit, got, tc.want)
		}
	}
}

func readCRD(t *testing.T, file string) *apiextensionsv1.JSONSchemaProps {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(envtest.RepoRoot(), "config", "crd", "bases", file))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return crd.Spec.Versions[0].Schema.OpenAPIV3Schema
}

func prop(t *testing.T, s *apiextensionsv1.JSONSchemaProps, path ...string) *apiextensionsv1.JSONSchemaProps {
	t.Helper()
	for _, p := range path {
		if p == "[]" {
			s = s.Items.Schema
			continue
		}
		next, ok := s.Properties[p]
		if !ok {
			t.Fatalf("no property %s in %v", p, path)
		}
		s = &next
	}
	return s
}

// The limits the writers truncate to are Go constants; the markers that make the CRD need
// literals. This keeps the two equal.
func TestLimitsMatchTheCRD(t *testing.T) {
	vip, agent := readCRD(t, "vigil.dev_virtualips.yaml"), readCRD(t, "vigil.dev_nodeagents.yaml")
	checks := []struct {
		name  string
		limit *int64
		want  int
	}{
		{"VIPEligibility.reason maxLength", prop(t, agent, "status", "vips", "[]", "reason").MaxLength, vigilv1.MaxReasonLength},
		{"OwnerTransition.reason maxLength", prop(t, vip, "status", "lastTransition", "reason").MaxLength, vigilv1.MaxTransitionReasonLength},
		{"condition message maxLength", prop(t, vip, "status", "conditions", "[]", "message").MaxLength, vigilv1.MaxConditionMessageLength},
		{"NodeAgent gateways maxItems", prop(t, agent, "status", "gateways").MaxItems, vigilv1.MaxGateways},
	}
	for _, c := range checks {
		if c.limit == nil || *c.limit != int64(c.want) {
			t.Errorf("%s is %v in the CRD, %d in Go", c.name, c.limit, c.want)
		}
	}
	// The cap on standbys may be raised up to the CRD's maxItems without a schema change.
	if max := prop(t, vip, "status", "standbys").MaxItems; max == nil || *max < vigilv1.MaxStandbys {
		t.Errorf("status.standbys maxItems %v is below MaxStandbys %d", max, vigilv1.MaxStandbys)
	}
}
