package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

func nodeWith(name string, addrs ...corev1.NodeAddress) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Addresses: addrs}}
}

func internalIP(a string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a}
}

func apiServerSlice(namespace, service string, family discoveryv1.AddressType, addrs ...string) discoveryv1.EndpointSlice {
	return discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: namespace, Name: service + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: family,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: addrs}},
	}
}

func agentWithGateways(node string, gws ...string) vigilv1.NodeAgent {
	return vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: node}, Status: vigilv1.NodeAgentStatus{Gateways: gws}}
}

func TestReservedBy(t *testing.T) {
	nodes := []corev1.Node{
		nodeWith("node-b", internalIP("198.18.0.12"), corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.12"},
			corev1.NodeAddress{Type: corev1.NodeHostName, Address: "198.18.0.99"}),
		nodeWith("node-a", internalIP("198.18.0.11"), internalIP("fd00:198:18::11")),
		nodeWith("node-c", internalIP("198.18.0.11")), // a duplicate: node-a is named
	}
	slices := []discoveryv1.EndpointSlice{
		apiServerSlice("default", "kubernetes", discoveryv1.AddressTypeIPv4, "198.18.0.2", "198.18.0.3"),
		apiServerSlice("default", "kubernetes", discoveryv1.AddressTypeIPv6, "fd00:198:18::2"),
		apiServerSlice("default", "web", discoveryv1.AddressTypeIPv4, "198.18.0.50"),
		apiServerSlice("other", "kubernetes", discoveryv1.AddressTypeIPv4, "198.18.0.51"),
	}
	agents := []vigilv1.NodeAgent{
		agentWithGateways("node-b", "198.18.0.1", "fd00:198:18::1"),
		agentWithGateways("node-a", "198.18.0.1"),
		agentWithGateways("node-c", "198.18.0.254"),
	}
	cases := []struct {
		address string
		want    string
	}{
		{"198.18.0.100", ""},
		{"198.18.0.11", "198.18.0.11 is the InternalIP of Node node-a"},
		{"fd00:198:18::11", "fd00:198:18::11 is the InternalIP of Node node-a"},
		{"203.0.113.12", "203.0.113.12 is the ExternalIP of Node node-b"},
		{"198.18.0.99", ""}, // a Hostname entry is not an address the node binds
		{"198.18.0.3", "198.18.0.3 is an address of the kubernetes Service (the API server)"},
		{"fd00:198:18::2", "fd00:198:18::2 is an address of the kubernetes Service (the API server)"},
		{"198.18.0.50", ""}, // another Service's endpoint
		{"198.18.0.51", ""}, // a kubernetes Service in another namespace
		{"198.18.0.1", "198.18.0.1 is the default gateway of node node-a"},
		{"fd00:198:18::1", "fd00:198:18::1 is the default gateway of node node-b"},
		{"198.18.0.254", "198.18.0.254 is the default gateway of node node-c"},
		{"not an address", ""},
	}
	for _, tc := range cases {
		t.Run(tc.address, func(t *testing.T) {
			if got := ReservedBy(tc.address, nodes, slices, agents); got != tc.want {
				t.Errorf("ReservedBy(%s) = %q, want %q", tc.address, got, tc.want)
			}
		})
	}
}

// A node's own address wins over the API server's and a gateway's, so that a node that
// is also the API server is named as the node.
func TestReservedByNamesTheNodeFirst(t *testing.T) {
	nodes := []corev1.Node{nodeWith("cp-1", internalIP("198.18.0.2"))}
	slices := []discoveryv1.EndpointSlice{apiServerSlice("default", "kubernetes", discoveryv1.AddressTypeIPv4, "198.18.0.2")}
	agents := []vigilv1.NodeAgent{agentWithGateways("cp-1", "198.18.0.2")}
	if got, want := ReservedBy("198.18.0.2", nodes, slices, agents), "198.18.0.2 is the InternalIP of Node cp-1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := ReservedBy("198.18.0.2", nil, slices, agents), "198.18.0.2 is an address of the kubernetes Service (the API server)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
