package controllers

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// The kubernetes Service in the default namespace fronts the API server; its endpoints are
// the API servers' own addresses.
const (
	apiServerNamespace = metav1.NamespaceDefault
	apiServerService   = "kubernetes"
)

// isAPIServerSlice says whether an EndpointSlice belongs to the kubernetes Service.
func isAPIServerSlice(s *discoveryv1.EndpointSlice) bool {
	return s.Namespace == apiServerNamespace && s.Labels[discoveryv1.LabelServiceName] == apiServerService
}

// ReservedBy says what else in the cluster owns address, or "" when nothing does: a Node
// (an InternalIP or ExternalIP in its status.addresses), the API server (an endpoint of the
// kubernetes Service) or a node's default gateway (as its agent reports it). Binding such
// an address on a node would steal it from its owner (a node's own address, the API
// server the agents need, the router that connects the node), so the controller never
// elects an owner for it. The message names the owner; when several own it, the first in
// that order and by node name, so that it stays the same from one reconcile to the next.
func ReservedBy(address string, nodes []corev1.Node, apiServer []discoveryv1.EndpointSlice, agents []vigilv1.NodeAgent) string {
	addr, err := netip.ParseAddr(address)
	if err != nil {
		return ""
	}
	addr = addr.Unmap()
	same := func(s string) bool {
		a, err := netip.ParseAddr(s)
		return err == nil && a.Unmap() == addr
	}
	if node, kind := nodeWithAddress(nodes, same); node != "" {
		return fmt.Sprintf("%s is the %s of Node %s", address, kind, node)
	}
	for i := range apiServer {
		if s := &apiServer[i]; isAPIServerSlice(s) && s.AddressType != discoveryv1.AddressTypeFQDN && sliceHasAddress(s, same) {
			return fmt.Sprintf("%s is an address of the %s Service (the API server)", address, apiServerService)
		}
	}
	gateway := ""
	for i := range agents {
		a := &agents[i]
		for _, gw := range a.Status.Gateways {
			if same(gw) && (gateway == "" || a.Name < gateway) {
				gateway = a.Name
			}
		}
	}
	if gateway != "" {
		return fmt.Sprintf("%s is the default gateway of node %s", address, gateway)
	}
	return ""
}

// nodeWithAddress is the first node by name with an InternalIP or ExternalIP for which
// same is true, and the type of that address.
func nodeWithAddress(nodes []corev1.Node, same func(string) bool) (string, corev1.NodeAddressType) {
	var node string
	var kind corev1.NodeAddressType
	for i := range nodes {
		n := &nodes[i]
		if node != "" && n.Name >= node {
			continue
		}
		for _, a := range n.Status.Addresses {
			if (a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP) && same(a.Address) {
				node, kind = n.Name, a.Type
				break
			}
		}
	}
	return node, kind
}

func sliceHasAddress(s *discoveryv1.EndpointSlice, same func(string) bool) bool {
	for _, ep := range s.Endpoints {
		for _, a := range ep.Addresses {
			if same(a) {
				return true
			}
		}
	}
	return false
}
