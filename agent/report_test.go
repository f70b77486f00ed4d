package agent

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// Entries are written as "name:state" with state "1" (eligible, not bound), "0"
// (ineligible), "pending" or "bound" (at epoch 2); each VIP named is created age seconds
// before now ("web@40": 40 s old). An entry of a VIP not in the list has no "@".
func TestOmitSettled(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	parse := func(s string) ([]vigilv1.VIPEligibility, []vigilv1.VirtualIP) {
		var reports []vigilv1.VIPEligibility
		var vips []vigilv1.VirtualIP
		for _, f := range strings.Fields(s) {
			nameAge, state, _ := strings.Cut(f, ":")
			name, age, listed := strings.Cut(nameAge, "@")
			uid := types.UID(name + "-uid")
			if listed {
				secs, _ := time.ParseDuration(age + "s")
				vips = append(vips, vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: name, UID: uid, CreationTimestamp: metav1.NewTime(now.Add(-secs))}})
			}
			r := vigilv1.VIPEligibility{Name: name, UID: uid, Eligible: state == "1" || state == "bound", Pending: state == "pending"}
			if state == "bound" {
				r.BoundEpoch = 2
			}
			reports = append(reports, r)
		}
		return reports, vips
	}
	cases := []struct {
		scenario string
		reports  string
		want     string // the names kept
		again    time.Duration
	}{
		{"an old VIP the node is eligible for and does not hold is left out", "web@40:1", "", 0},
		{"a young one is kept until it is omitSettledAfter plus the skew allowance old", "web@5:1", "web", 10 * time.Second},
		{"the next look is when the first young one settles", "web@5:1 db@14:1 old@60:1", "web db", time.Second},
		{"a VIP the node holds is always listed (its bind is news)", "web@40:bound", "web", 0},
		{"a VIP the node is not eligible for is always listed (with why)", "web@40:0", "web", 0},
		{"a VIP whose checks have no verdict yet is listed", "web@40:pending", "web", 0},
		{"an entry of a VIP the agent no longer lists is kept for the reporter to judge", "gone:1", "gone", 0},
	}
	for _, tc := range cases {
		t.Run(tc.scenario, func(t *testing.T) {
			reports, vips := parse(tc.reports)
			out, again := omitSettled(reports, vips, now)
			var names []string
			for _, r := range out {
				names = append(names, r.Name)
			}
			if !slices.Equal(names, strings.Fields(tc.want)) || again != tc.again {
				t.Errorf("omitSettled(%s) keeps %v, looks again in %v; want %q, %v", tc.reports, names, again, tc.want, tc.again)
			}
		})
	}
}

// A VirtualIP the agent left out reads as eligible and not bound once it is older than
// omitSettledAfter, on the reader's clock; before the first judgement (no
// omitSettledAfter) a missing entry is no report, and an entry always wins.
func TestReportOfALeftOutVIP(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	vip := func(age time.Duration) *vigilv1.VirtualIP {
		return &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "w1", CreationTimestamp: metav1.NewTime(now.Add(-age))}}
	}
	judged := &metav1.Duration{Duration: omitSettledAfter}
	cases := []struct {
		scenario     string
		status       vigilv1.NodeAgentStatus
		vip          *vigilv1.VirtualIP
		wantReport   bool
		wantEligible bool
	}{
		{"an old VIP left out: eligible", vigilv1.NodeAgentStatus{OmitSettledAfter: judged}, vip(time.Minute), true, true},
		{"a young VIP without an entry: not judged yet", vigilv1.NodeAgentStatus{OmitSettledAfter: judged}, vip(5 * time.Second), false, false},
		{"an agent that has not judged yet: no report", vigilv1.NodeAgentStatus{}, vip(time.Minute), false, false},
		{"an entry wins", vigilv1.NodeAgentStatus{OmitSettledAfter: judged, VIPs: []vigilv1.VIPEligibility{{Name: "web", UID: "w1", Reason: "tcp check failed"}}},
			vip(time.Minute), true, false},
		{"an entry of the same name's earlier object is none", vigilv1.NodeAgentStatus{VIPs: []vigilv1.VIPEligibility{{Name: "web", UID: "w0", Eligible: true}}},
			vip(time.Minute), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.scenario, func(t *testing.T) {
			r := tc.status.Report(tc.vip, now)
			if (r != nil) != tc.wantReport || (r != nil && r.Eligible != tc.wantEligible) {
				t.Errorf("Report = %+v; want a report %v, eligible %v", r, tc.wantReport, tc.wantEligible)
			}
			if r != nil && tc.status.Entry(tc.vip) == nil && r.BoundEpoch != 0 {
				t.Errorf("a left-out VIP reads as bound: %+v", r)
			}
		})
	}
}
