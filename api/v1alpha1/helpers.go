package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Selector is the nodeSelector as a labels.Selector: everything when unset.
func (s *VirtualIPSpec) Selector() (labels.Selector, error) {
	if s.NodeSelector == nil {
		return labels.Everything(), nil
	}
	return metav1.LabelSelectorAsSelector(s.NodeSelector)
}

// SelectsNode reports whether the VirtualIP may be held by a node with these labels: its
// nodeSelector matches them (no selector matches every node). A selector the schema
// admitted but that does not parse selects nothing.
func (s *VirtualIPSpec) SelectsNode(nodeLabels map[string]string) bool {
	sel, err := s.Selector()
	return err == nil && sel.Matches(labels.Set(nodeLabels))
}

// Selects reports whether the priority rule applies to a node with these labels.
func (r *PriorityRule) Selects(nodeLabels map[string]string) bool {
	sel, err := metav1.LabelSelectorAsSelector(&r.NodeSelector)
	return err == nil && sel.Matches(labels.Set(nodeLabels))
}

// Entry returns the node's entry for the VirtualIP in vips, nil if it has none. An entry
// of an earlier VirtualIP of the same name (another UID) is none; one without a UID
// (written by an agent older than the field) is taken by name. Entries the agent left out
// are all of VirtualIPs the node does not hold (see Report).
func (s *NodeAgentStatus) Entry(vip *VirtualIP) *VIPEligibility {
	for i := range s.VIPs {
		if r := &s.VIPs[i]; r.Name == vip.Name && (r.UID == "" || r.UID == vip.UID) {
			return r
		}
	}
	return nil
}

// Report returns the node's report on the VirtualIP, nil if it has none: its entry, or,
// for a VirtualIP created more than OmitSettledAfter before now that has none, a new
// report saying the node is eligible for it and does not hold it.
func (s *NodeAgentStatus) Report(vip *VirtualIP, now time.Time) *VIPEligibility {
	if r := s.Entry(vip); r != nil {
		return r
	}
	if s.OmitSettledAfter != nil && now.Sub(vip.CreationTimestamp.Time) > s.OmitSettledAfter.Duration {
		return &VIPEligibility{Name: vip.Name, UID: vip.UID, Eligible: true}
	}
	return nil
}

// MemberlistPeers maps the agents that gossip to their memberlist addresses (host:port),
// leaving out except (the caller's own node).
func MemberlistPeers(agents []NodeAgent, except string) map[string]string {
	out := map[string]string{}
	for i := range agents {
		if a := &agents[i]; a.Name != except && a.Status.MemberlistAddress != "" {
			out[a.Name] = a.Status.MemberlistAddress
		}
	}
	return out
}
