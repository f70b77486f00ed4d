package v1alpha1

import (
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

// Report returns the node's report on the VirtualIP, nil if it has none. A report on an
// earlier VirtualIP of the same name (another UID) is none; one without a UID (written by
// an agent older than the field) is taken by name.
func (s *NodeAgentStatus) Report(vip *VirtualIP) *VIPEligibility {
	for i := range s.VIPs {
		if r := &s.VIPs[i]; r.Name == vip.Name && (r.UID == "" || r.UID == vip.UID) {
			return r
		}
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
