package controllers

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// statusInput is what the status of a VirtualIP is computed from.
type statusInput struct {
	Decision Decision
	// ConflictWith names an older VirtualIP with the same address ("" if none).
	ConflictWith string
	// ReservedBy says what else in the cluster owns the address ("" if nothing does; see
	// ReservedBy). It wins over ConflictWith: no VirtualIP may have such an address.
	ReservedBy string
	// OwnerReport is the elected owner's report on this VIP (nil if none).
	OwnerReport *vigilv1.VIPEligibility
	Now         metav1.Time
}

// computeStatus returns the status the controller wants on vip: a pure function, so every
// rule is tested without a cluster.
func computeStatus(vip *vigilv1.VirtualIP, in statusInput) vigilv1.VirtualIPStatus {
	old := vip.Status
	s := *old.DeepCopy()
	s.ObservedGeneration = vip.Generation
	d := in.Decision
	reason := d.Reason
	switch {
	case in.ReservedBy != "":
		d, reason = Decision{}, vigilv1.ReasonAddressReserved
	case in.ConflictWith != "":
		d, reason = Decision{}, vigilv1.ReasonAddressInUse
	}
	s.Owner, s.Standbys = d.Owner, d.Standbys
	if s.Owner != old.Owner {
		s.Epoch = old.Epoch + 1
		s.LastTransition = &vigilv1.OwnerTransition{Time: in.Now, From: old.Owner, To: s.Owner,
			Reason: vigilv1.Truncate(reasonOr(reason, vigilv1.ReasonElected), vigilv1.MaxTransitionReasonLength)}
	}
	s.Interface = ""
	if in.OwnerReport != nil && s.Owner != "" {
		s.Interface = in.OwnerReport.Interface
	}

	// Messages quote agents' reports and node names: cut them to what the schema takes.
	// Reasons are this package's constants, valid by construction.
	cond := func(t string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason,
			Message: vigilv1.Truncate(msg, vigilv1.MaxConditionMessageLength), ObservedGeneration: vip.Generation, LastTransitionTime: in.Now})
	}
	switch {
	case in.ReservedBy != "":
		msg := in.ReservedBy + "; this VirtualIP is not bound"
		cond(vigilv1.ConditionConflict, metav1.ConditionTrue, vigilv1.ReasonAddressReserved, msg)
		cond(vigilv1.ConditionReady, metav1.ConditionFalse, vigilv1.ReasonAddressReserved, msg)
	case in.ConflictWith != "":
		msg := fmt.Sprintf("%s is already used by VirtualIP %s; this one is not bound", vip.Spec.Address, in.ConflictWith)
		cond(vigilv1.ConditionConflict, metav1.ConditionTrue, vigilv1.ReasonAddressInUse, msg)
		cond(vigilv1.ConditionReady, metav1.ConditionFalse, vigilv1.ReasonAddressInUse, msg)
	case s.Owner == "":
		cond(vigilv1.ConditionConflict, metav1.ConditionFalse, vigilv1.ReasonNoConflict, "no other VirtualIP has this address")
		cond(vigilv1.ConditionReady, metav1.ConditionFalse, vigilv1.ReasonNoOwner, messageOr(d.Message, "no node holds the address"))
	case in.OwnerReport != nil && in.OwnerReport.BoundEpoch == s.Epoch:
		cond(vigilv1.ConditionConflict, metav1.ConditionFalse, vigilv1.ReasonNoConflict, "no other VirtualIP has this address")
		cond(vigilv1.ConditionReady, metav1.ConditionTrue, vigilv1.ReasonBound, fmt.Sprintf("bound on %s (%s)", s.Owner, s.Interface))
	default:
		cond(vigilv1.ConditionConflict, metav1.ConditionFalse, vigilv1.ReasonNoConflict, "no other VirtualIP has this address")
		cond(vigilv1.ConditionReady, metav1.ConditionFalse, vigilv1.ReasonBinding, fmt.Sprintf("waiting for %s to bind the address (epoch %d)", s.Owner, s.Epoch))
	}
	switch {
	case d.Degraded:
		cond(vigilv1.ConditionDegraded, metav1.ConditionTrue, vigilv1.ReasonNoEligibleNode, d.Message)
	case s.Owner == "":
		// Degraded is about an owner serving while unhealthy; with no owner, Ready says it.
		cond(vigilv1.ConditionDegraded, metav1.ConditionFalse, vigilv1.ReasonNoOwner, "no node holds the address (see Ready)")
	default:
		cond(vigilv1.ConditionDegraded, metav1.ConditionFalse, vigilv1.ReasonOwnerEligible, "the owner passes its health checks")
	}
	return s
}

func reasonOr(r, def string) string {
	if r == "" {
		return def
	}
	return r
}

func messageOr(m, def string) string {
	if m == "" {
		return def
	}
	return m
}
