// Package v1alpha1 contains the vigil.dev/v1alpha1 API: VirtualIP, the address a user asks
// Vigil to keep answering, and NodeAgent, each node's agent's report.
//
// It depends only on the standard library and k8s.io/apimachinery, so that clients can
// import it cheaply.
//
// +kubebuilder:object:generate=true
// +groupName=vigil.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "vigil.dev", Version: "v1alpha1"}

	// SchemeBuilder registers this package's types with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds this package's types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &VirtualIP{}, &VirtualIPList{}, &NodeAgent{}, &NodeAgentList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
