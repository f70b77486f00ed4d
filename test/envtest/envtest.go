// Package envtest starts a real etcd and kube-apiserver (built by `make tools`) with
// Vigil's CRDs installed, for integration tests; it also finds the source tree and the
// other tools `make tools` installs, for the tests that run them.
package envtest

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"vigil.dev/vigil/internal/scheme"
)

// Env is a running control plane.
type Env struct {
	env    *envtest.Environment
	Config *rest.Config
	Client client.Client
}

// RepoRoot is the root of the Vigil source tree.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Tool is the path of one of the tools `make tools` installs (helm, promtool,
// kubeconform), in $VIGIL_TOOLS_BIN as the Makefile sets it; without it the test fails
// saying how to get them, never skips.
func Tool(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("VIGIL_TOOLS_BIN")
	if dir == "" {
		t.Fatalf("VIGIL_TOOLS_BIN is not set: run `make test`, which installs %s (`make tools`)", name)
	}
	return filepath.Join(dir, name)
}

// Start starts etcd and kube-apiserver from $KUBEBUILDER_ASSETS and installs the CRDs.
// A missing binary is an error that says how to get it, never a skip.
func Start() (*Env, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, " +
			"which builds etcd and kube-apiserver (`make tools`) and points KUBEBUILDER_ASSETS at them")
	}
	for _, bin := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			return nil, fmt.Errorf("KUBEBUILDER_ASSETS=%s has no %s: run `make tools`: %w", assets, bin, err)
		}
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                scheme.New(),
	}
	// Never depend on the host's default route: advertise loopback and do not reconcile
	// the kubernetes Service endpoints.
	apiserver := env.ControlPlane.GetAPIServer().Configure()
	apiserver.Set("advertise-address", "127.0.0.1")
	apiserver.Set("endpoint-reconciler-type", "none")
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("creating client: %w", err)
	}
	return &Env{env: env, Config: cfg, Client: c}, nil
}

// InstallCRDs installs more CRDs (e.g. prometheus-operator's) and waits until they are served.
func (e *Env) InstallCRDs(crds []*apiextensionsv1.CustomResourceDefinition) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	return envtest.InstallCRDs(e.Config, envtest.CRDInstallOptions{CRDs: crds})
}

// Stop stops kube-apiserver and etcd and removes their data.
func (e *Env) Stop() error {
	return e.env.Stop()
}

// Main is a package's whole TestMain: it runs the tests with a control plane (see Run),
// *env set to it, and exits with their status.
func Main(m interface{ Run() int }, env **Env) {
	os.Exit(Run(m, func(e *Env) { *env = e }))
}

// Run is a TestMain body: it starts a control plane, runs the tests with it and stops it.
// A fuzzing worker process runs only a fuzz target, which needs no control plane: it
// starts none (each worker would start its own).
func Run(m interface{ Run() int }, set func(*Env)) int {
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return m.Run()
	}
	e, err := Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	set(e)
	fmt.Fprintf(os.Stderr, "envtest: real kube-apiserver at %s (binaries from %s)\n", e.Config.Host, os.Getenv("KUBEBUILDER_ASSETS"))
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping control plane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
