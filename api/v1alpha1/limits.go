package v1alpha1

import (
	"strings"
	"unicode/utf8"
)

// Limits of the status fields that the controller and the agents fill from text they do not
// control (health check errors, node names, messages built from both). Each equals the
// field's MaxLength or MaxItems marker, which must be a literal:
// TestLimitsMatchTheCRD keeps the two in step. Writers cut their text to these limits
// (Truncate), so that no status or report fails validation forever.
const (
	// MaxReasonLength is the maxLength of VIPEligibility.reason.
	MaxReasonLength = 1024
	// MaxTransitionReasonLength is the maxLength of OwnerTransition.reason.
	MaxTransitionReasonLength = 64
	// MaxConditionMessageLength is the maxLength of metav1.Condition's message.
	MaxConditionMessageLength = 32768
	// MaxStandbys is how many standbys status.standbys lists at most: the best ones, in
	// takeover order. Enough for an agent to find a live one during an API outage even
	// when many nodes die at once, and it keeps the status of a VIP that thousands of
	// nodes may hold small. The CRD's MaxItems (256) leaves room to raise it.
	MaxStandbys = 16
	// MaxGateways is the maxItems of NodeAgentStatus.gateways.
	MaxGateways = 4
)

// Ellipsis ends a truncated text.
const Ellipsis = "…"

// Truncate returns s cut to at most limit bytes, ending with an ellipsis when it was cut,
// and never in the middle of a UTF-8 sequence. Bytes are at least as many as the
// characters that the API server's maxLength counts, so the result always fits.
func Truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	if limit < len(Ellipsis) {
		return cutRunes(s, limit)
	}
	return strings.TrimRight(cutRunes(s, limit-len(Ellipsis)), " ") + Ellipsis
}

// cutRunes is the longest prefix of s (longer than n bytes) of at most n bytes that ends
// on a rune boundary.
func cutRunes(s string, n int) string {
	n = max(n, 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
