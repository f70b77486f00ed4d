package agent

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// A reason longer than the schema takes (an HTTP check quoting a long body, say) is cut
// before it is reported, so that the NodeAgent write is not refused forever; a report
// without a verdict stays pending (a field, not words in the reason).
func TestMergeReportCutsReasonsToTheSchema(t *testing.T) {
	now := metav1.NewMicroTime(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	long := strings.Repeat("connection refused ", 300)
	next := []vigilv1.VIPEligibility{
		{Name: "a", Reason: long},
		{Name: "b", Pending: true, Reason: strings.Repeat("x", 2000) + ": " + vigilv1.NoVerdictYet},
		{Name: "c", Reason: "all health checks passing", Eligible: true},
	}
	out := mergeReport(nil, next, now)
	if got := out[0].Reason; len(got) > vigilv1.MaxReasonLength || !strings.HasSuffix(got, vigilv1.Ellipsis) || !strings.HasPrefix(got, "connection refused") {
		t.Errorf("long reason reported as %d bytes %q..., want at most %d ending with an ellipsis", len(got), got[:40], vigilv1.MaxReasonLength)
	}
	if got := out[1]; len(got.Reason) > vigilv1.MaxReasonLength || !got.Pending {
		t.Errorf("long reason without verdict reported as %d bytes, pending %v; want at most %d, pending", len(got.Reason), got.Pending, vigilv1.MaxReasonLength)
	}
	if out[2].Reason != "all health checks passing" {
		t.Errorf("short reason changed to %q", out[2].Reason)
	}
	if next[0].Reason != long {
		t.Error("mergeReport changed its input")
	}
}
