package chart_test

import (
	"testing"

	"vigil.dev/vigil/test/envtest"
)

// env is the package's control plane: a real etcd and kube-apiserver with Vigil's CRDs.
var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }
