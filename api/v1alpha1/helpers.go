package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// SelectsNode reports whether the VirtualIP may be held by a node with these labels: its
// nodeSelector matches them (no selector matches every node). A selector the schema
// admitted but that does not parse selects nothing.
func (s *VirtualIPSpec) SelectsNode(nodeLabels map[string]string) bool {
	if s.NodeSelector == nil {
		return true
	}
	sel, err := metav1.LabelSelectorAsSelector(s.NodeSelector)
	return err == nil && sel.Matches(labels.Set(nodeLabels))
}

// Report returns the node's report on the named VirtualIP, nil if it has none.
func (s *NodeAgentStatus) Report(vip string) *VIPEligibility {
	for i := range s.VIPs {
		if s.VIPs[i].Name == vip {
			return &s.VIPs[i]
		}
	}
	return nil
}
