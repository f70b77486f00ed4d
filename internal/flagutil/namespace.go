package flagutil

import "os"

// DefaultNamespace is Vigil's namespace when no flag says otherwise: the pod's own
// ($POD_NAMESPACE, which the chart sets from the downward API), else vigil-system.
func DefaultNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "vigil-system"
}
