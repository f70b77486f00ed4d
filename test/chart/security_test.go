package chart_test

import (
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// The NodeAgent policy is on by default, applies to the agent's ServiceAccount only, and
// its binding denies; a value turns it off.
func TestNodeAgentPolicyBindsTheAgentToItsNode(t *testing.T) {
	objs := render(t, "--namespace", "vigil-ops")
	var policy admissionregistrationv1.ValidatingAdmissionPolicy
	fromUnstructured(t, find(t, objs, "ValidatingAdmissionPolicy", "vigil-agent-own-nodeagent"), &policy)
	var binding admissionregistrationv1.ValidatingAdmissionPolicyBinding
	fromUnstructured(t, find(t, objs, "ValidatingAdmissionPolicyBinding", "vigil-agent-own-nodeagent"), &binding)
	if len(policy.Spec.MatchConditions) != 1 ||
		policy.Spec.MatchConditions[0].Expression != `request.userInfo.username == "system:serviceaccount:vigil-ops:vigil-agent"` {
		t.Errorf("policy match conditions %+v: want the agent ServiceAccount of the release namespace", policy.Spec.MatchConditions)
	}
	rules := policy.Spec.MatchConstraints.ResourceRules
	if len(rules) != 1 || !slices.Equal(rules[0].Resources, []string{"nodeagents", "nodeagents/status"}) ||
		!slices.Equal(rules[0].Operations, []admissionregistrationv1.OperationType{"CREATE", "UPDATE"}) {
		t.Errorf("policy rules %+v: want CREATE and UPDATE of nodeagents and their status", rules)
	}
	if *policy.Spec.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("failure policy %v, want Fail", *policy.Spec.FailurePolicy)
	}
	if binding.Spec.PolicyName != policy.Name || !slices.Equal(binding.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{"Deny"}) {
		t.Errorf("binding %+v: want Deny for %s", binding.Spec, policy.Name)
	}
	for _, o := range render(t, "--set", "agent.nodeAgentPolicy.enabled=false") {
		if strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") {
			t.Errorf("agent.nodeAgentPolicy.enabled=false still renders %s %s", o.GetKind(), o.GetName())
		}
	}
}

// Least privilege: no ClusterRole grants Leases, Secrets or Events (those are Roles in the
// namespaces that need them), and only the editor role, aggregated nowhere, writes
// VirtualIPs.
func TestClusterRolesGrantOnlyWhatIsClusterWide(t *testing.T) {
	for _, o := range render(t) {
		if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
			continue
		}
		var role rbacv1.ClusterRole // a Role's rules read the same
		fromUnstructured(t, o, &role)
		for _, r := range role.Rules {
			for _, res := range r.Resources {
				if o.GetKind() == "ClusterRole" && (res == "leases" || res == "secrets" || res == "events") {
					t.Errorf("ClusterRole %s grants %v on %s: only a Role in a namespace may", o.GetName(), r.Verbs, res)
				}
				if res == "events" && !slices.Equal(r.Verbs, []string{"create", "patch"}) {
					t.Errorf("%s %s: events verbs %v, want create and patch", o.GetKind(), o.GetName(), r.Verbs)
				}
				writes := slices.ContainsFunc(r.Verbs, func(v string) bool {
					return v == "create" || v == "update" || v == "patch" || v == "delete" || v == "*"
				})
				if res == "virtualips" && writes && o.GetName() != "vigil-virtualip-editor" {
					t.Errorf("%s %s may write VirtualIPs (%v)", o.GetKind(), o.GetName(), r.Verbs)
				}
			}
		}
		if o.GetName() == "vigil-virtualip-editor" {
			for k := range o.GetLabels() {
				if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") {
					t.Errorf("the VirtualIP editor role is aggregated (%s): edit and admin would create VirtualIPs", k)
				}
			}
		}
	}
}

// The agent's listeners bind to the node's address: the kubelet expands $(HOST_IP) from
// the downward API's status.hostIP.
func TestAgentListensOnTheNodeAddress(t *testing.T) {
	c := podSpec(t, find(t, render(t), "DaemonSet", "vigil-agent")).Containers[0]
	if !slices.Contains(c.Args, "--bind-address=$(HOST_IP)") {
		t.Errorf("agent args %v lack --bind-address=$(HOST_IP)", c.Args)
	}
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "HOST_IP" })
	if i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.FieldRef.FieldPath != "status.hostIP" {
		t.Errorf("agent env %v: want HOST_IP from status.hostIP", c.Env)
	}
}

func fromUnstructured(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatal(err)
	}
}
