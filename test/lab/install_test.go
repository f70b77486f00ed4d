package lab

import (
	"slices"
	"testing"
)

// The lab expands $(VAR) in a workload's arguments as the kubelet does.
func TestWorkloadArgsExpandTheEnvironment(t *testing.T) {
	w := Workload{Args: []string{"agent", "--bind-address=$(HOST_IP)", "--a=$(UNKNOWN)", "--b=$$(HOST_IP)", "--c=$", "--d=$(HOST_IP", "--e=$(NODE_NAME)-$(HOST_IP)"}}
	got := w.args([]string{"KUBECONFIG=/x", "HOST_IP=198.18.0.11", "NODE_NAME=node-a"})
	want := []string{"agent", "--bind-address=198.18.0.11", "--a=$(UNKNOWN)", "--b=$(HOST_IP)", "--c=$", "--d=$(HOST_IP", "--e=node-a-198.18.0.11"}
	if !slices.Equal(got, want) {
		t.Errorf("args %q,\nwant %q", got, want)
	}
}
