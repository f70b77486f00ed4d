package controllers

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

func condition(s vigilv1.VirtualIPStatus, t string) *metav1.Condition {
	return meta.FindStatusCondition(s.Conditions, t)
}

func TestComputeStatus(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	later := metav1.NewTime(now.Add(time.Minute))
	vip := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: 3}, Spec: vigilv1.VirtualIPSpec{Address: "198.18.0.100"}}

	// Elected: epoch 1, waiting for the bind.
	s := computeStatus(vip, statusInput{Decision: Decision{Owner: "a", Standbys: []string{"b"}, Reason: vigilv1.ReasonElected}, Now: now})
	if s.Owner != "a" || s.Epoch != 1 || s.ObservedGeneration != 3 || s.LastTransition.Reason != vigilv1.ReasonElected || s.LastTransition.To != "a" {
		t.Fatalf("after election: %+v", s)
	}
	if c := condition(s, vigilv1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != vigilv1.ReasonBinding {
		t.Errorf("Ready before the bind: %+v", c)
	}
	// The owner reports the bind at this epoch: Ready.
	vip.Status = s
	s = computeStatus(vip, statusInput{Decision: Decision{Owner: "a", Standbys: []string{"b"}},
		OwnerReport: &vigilv1.VIPEligibility{Name: "db", Eligible: true, BoundEpoch: 1, Interface: "eth0"}, Now: later})
	if c := condition(s, vigilv1.ConditionReady); c.Status != metav1.ConditionTrue || c.Reason != vigilv1.ReasonBound || s.Interface != "eth0" || s.Epoch != 1 {
		t.Errorf("Ready after the bind: %+v, status %+v", c, s)
	}
	// A bind reported for an older epoch does not count.
	vip.Status = s
	s = computeStatus(vip, statusInput{Decision: Decision{Owner: "b", Reason: vigilv1.ReasonOwnerLost},
		OwnerReport: &vigilv1.VIPEligibility{Name: "db", Eligible: true, BoundEpoch: 1}, Now: later})
	if s.Epoch != 2 || s.LastTransition.From != "a" || s.LastTransition.Reason != vigilv1.ReasonOwnerLost {
		t.Errorf("move: %+v", s)
	}
	if c := condition(s, vigilv1.ConditionReady); c.Status != metav1.ConditionFalse {
		t.Errorf("Ready with a stale bind report: %+v", c)
	}
	// Fail open is Degraded.
	vip.Status = s
	s = computeStatus(vip, statusInput{Decision: Decision{Owner: "b", Degraded: true, Message: "no node is eligible"}, Now: later})
	if c := condition(s, vigilv1.ConditionDegraded); c.Status != metav1.ConditionTrue || c.Reason != vigilv1.ReasonNoEligibleNode {
		t.Errorf("Degraded: %+v", c)
	}
	// A conflict takes the address away and says with whom.
	vip.Status = s
	s = computeStatus(vip, statusInput{Decision: Decision{Owner: "b"}, ConflictWith: "older", Now: later})
	if s.Owner != "" || s.Epoch != 3 || s.LastTransition.Reason != vigilv1.ReasonAddressInUse {
		t.Errorf("conflict: %+v", s)
	}
	if c := condition(s, vigilv1.ConditionConflict); c.Status != metav1.ConditionTrue || c.Message != "198.18.0.100 is already used by VirtualIP older; this one is not bound" {
		t.Errorf("Conflict: %+v", c)
	}
	// Without an owner, Degraded does not claim that an owner passes its checks.
	if c := condition(s, vigilv1.ConditionDegraded); c.Status != metav1.ConditionFalse || c.Reason != vigilv1.ReasonNoOwner {
		t.Errorf("Degraded without owner: %+v, want False with reason NoOwner", c)
	}
}

func TestComputeStatusKeepsTransitionTimesWhileUnchanged(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	vip := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: 1}}
	vip.Status = computeStatus(vip, statusInput{Now: now})
	vip.Generation = 2
	s := computeStatus(vip, statusInput{Now: metav1.NewTime(now.Add(time.Hour))})
	ready := condition(s, vigilv1.ConditionReady)
	if !ready.LastTransitionTime.Equal(&now) || ready.ObservedGeneration != 2 || ready.Reason != vigilv1.ReasonNoOwner {
		t.Errorf("Ready %+v: want the old transition time, generation 2, NoOwner", ready)
	}
	if s.Epoch != 0 || s.LastTransition != nil {
		t.Errorf("no owner change, yet epoch %d, transition %+v", s.Epoch, s.LastTransition)
	}
}

// An address that belongs to something else is taken from its owner, never elected, and
// says what owns it; it wins over a conflict with an older VirtualIP.
func TestComputeStatusAddressReserved(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	vip := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: 1}, Spec: vigilv1.VirtualIPSpec{Address: "198.18.0.11"}}
	vip.Status = vigilv1.VirtualIPStatus{Owner: "a", Epoch: 4, Standbys: []string{"b"}}
	reserved := "198.18.0.11 is the InternalIP of Node node-a"
	s := computeStatus(vip, statusInput{Decision: Decision{Owner: "a", Standbys: []string{"b"}}, ReservedBy: reserved, ConflictWith: "older", Now: now})
	if s.Owner != "" || s.Standbys != nil || s.Epoch != 5 || s.LastTransition.Reason != vigilv1.ReasonAddressReserved || s.LastTransition.From != "a" {
		t.Errorf("reserved address kept an owner or lost no epoch: %+v", s)
	}
	want := reserved + "; this VirtualIP is not bound"
	for _, typ := range []string{vigilv1.ConditionConflict, vigilv1.ConditionReady} {
		c := condition(s, typ)
		wantStatus := map[string]metav1.ConditionStatus{vigilv1.ConditionConflict: metav1.ConditionTrue, vigilv1.ConditionReady: metav1.ConditionFalse}[typ]
		if c.Status != wantStatus || c.Reason != vigilv1.ReasonAddressReserved || c.Message != want {
			t.Errorf("%s = %+v, want %s with reason %s and message %q", typ, c, wantStatus, vigilv1.ReasonAddressReserved, want)
		}
	}
}

// Messages quote agents' reasons: whatever their length, the status fits the schema.
func TestComputeStatusCutsMessagesToTheSchema(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	vip := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: 1}, Spec: vigilv1.VirtualIPSpec{Address: "198.18.0.100"}}
	huge := strings.Repeat("check failed; ", 5000)
	s := computeStatus(vip, statusInput{Decision: Decision{Owner: "a", Degraded: true, Reason: strings.Repeat("R", 100), Message: huge}, Now: now})
	if c := condition(s, vigilv1.ConditionDegraded); len(c.Message) > vigilv1.MaxConditionMessageLength || !strings.HasSuffix(c.Message, vigilv1.Ellipsis) {
		t.Errorf("Degraded message is %d bytes, want at most %d ending with an ellipsis", len(c.Message), vigilv1.MaxConditionMessageLength)
	}
	if r := s.LastTransition.Reason; len(r) > vigilv1.MaxTransitionReasonLength {
		t.Errorf("transition reason is %d bytes, want at most %d", len(r), vigilv1.MaxTransitionReasonLength)
	}
}
