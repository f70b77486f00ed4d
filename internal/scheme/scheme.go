// Package scheme is the one runtime.Scheme of Vigil's binaries: Kubernetes' built-in types
// and Vigil's API.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// New returns a scheme with Kubernetes' built-in types and Vigil's API.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(vigilv1.AddToScheme(s))
	return s
}
