package flagutil

import (
	"crypto/tls"
	"flag"

	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"vigil.dev/vigil/internal/metricsauth"
)

// MetricsFlags are the metrics endpoint's flags, the same in both binaries.
type MetricsFlags struct {
	BindAddress string
	Secure      bool
	CertDir     string
}

// BindFlags registers the flags with the given default address.
func (m *MetricsFlags) BindFlags(fs *flag.FlagSet, defaultAddress string) {
	fs.StringVar(&m.BindAddress, "metrics-bind-address", defaultAddress, "host:port of the Prometheus metrics endpoint; 0 turns it off")
	fs.BoolVar(&m.Secure, "metrics-secure", true, "serve metrics over HTTPS, only to clients whose token may get /metrics (TokenReview and SubjectAccessReview); false serves plain HTTP to anyone who can connect")
	fs.StringVar(&m.CertDir, "metrics-cert-dir", "", "directory with tls.crt and tls.key for the metrics endpoint (default: a self-signed certificate made at start)")
}

// Validate reports the first invalid flag.
func (m *MetricsFlags) Validate() error {
	return ValidateBindAddress("metrics-bind-address", m.BindAddress)
}

// ServerOptions are controller-runtime's metrics server options: HTTPS behind Kubernetes
// authentication and authorization (the caller's token must be allowed to get /metrics),
// or plain HTTP.
func (m *MetricsFlags) ServerOptions() metricsserver.Options {
	o := metricsserver.Options{BindAddress: m.BindAddress, SecureServing: m.Secure}
	if m.Secure {
		o.FilterProvider = metricsauth.FilterProvider
		o.CertDir = m.CertDir
		// HTTP/1.1 only, as kubebuilder does: HTTP/2 has had stream-reset and rapid-reset
		// denial-of-service flaws, and a scrape gains nothing from it.
		o.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	}
	return o
}
