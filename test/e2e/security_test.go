package e2e

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// Each agent writes its NodeAgent with its own token, bound to its Pod on its node as the
// kubelet binds it. The chart's ValidatingAdmissionPolicy admits that, and nothing else:
// not another node's NodeAgent, not a token bound to no node; the controller may not write
// NodeAgents at all (RBAC).
func TestAgentCanWriteOnlyItsOwnNodeAgent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 2)
	inst := e.installVigil()
	agentA, agentB := e.clientFor(inst.Agent.Kubeconfigs["node-a"]), e.clientFor(inst.Agent.Kubeconfigs["node-b"])
	controller := e.clientFor(inst.Controller.Kubeconfig)

	// Each agent creates its NodeAgent and reports in it, as agents do.
	for node, c := range map[string]client.Client{"node-a": agentA, "node-b": agentB} {
		if err := c.Create(ctx, &vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: node}}); err != nil {
			t.Fatalf("%s's agent cannot create its NodeAgent: %v", node, err)
		}
		if err := patchHeartbeat(ctx, c, node); err != nil {
			t.Fatalf("%s's agent cannot report in its NodeAgent: %v", node, err)
		}
	}

	// node-a's token on node-b's NodeAgent, or on a NodeAgent of its own making: denied.
	const mine = `the vigil agent on node node-a may write only its own NodeAgent "node-a", not `
	expectDenied(t, "node-a's agent patching node-b's status", patchHeartbeat(ctx, agentA, "node-b"), mine+`"node-b"`)
	expectDenied(t, "node-a's agent creating node-c's NodeAgent",
		agentA.Create(ctx, &vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: "node-c"}}), mine+`"node-c"`)
	var na vigilv1.NodeAgent
	if err := agentA.Get(ctx, client.ObjectKey{Name: "node-b"}, &na); err != nil {
		t.Fatalf("node-a's agent cannot read node-b's NodeAgent (the majority and takeover need it): %v", err)
	}
	// Nor may an agent update any NodeAgent's metadata and spec (RBAC: create, and status only).
	na.Labels = map[string]string{"stolen": "true"}
	expectDenied(t, "node-a's agent updating node-b's NodeAgent", agentA.Update(ctx, &na), `cannot update resource "nodeagents"`)

	// The agent's ServiceAccount token bound to nothing (not issued to a Pod on a node).
	unbound := e.clientFor(e.unboundToken(ctx, inst.Agent.ServiceAccount))
	expectDenied(t, "an unbound agent token", patchHeartbeat(ctx, unbound, "node-a"), "the vigil agent's token names no node")

	// The controller reads NodeAgents and never writes them: RBAC says no.
	err := patchHeartbeat(ctx, controller, "node-a")
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `cannot patch resource "nodeagents/status"`) {
		t.Errorf("the controller patching a NodeAgent's status: %v, want RBAC's Forbidden", err)
	}
	if err := controller.List(ctx, &vigilv1.NodeAgentList{}); err != nil {
		t.Errorf("the controller cannot list NodeAgents: %v", err)
	}
}
