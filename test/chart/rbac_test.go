package chart_test

import (
	"context"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// A VirtualIP makes a node answer for an address, so the chart lets only cluster admins
// create them, and whomever they bind its editor ClusterRole to: not the built-in edit or
// admin roles. Reading is for everyone with view. Judged by the API server's RBAC, with
// the chart's ClusterRoles installed and aggregated into the built-in ones.
func TestOnlyTheEditorRoleMayCreateVirtualIPs(t *testing.T) {
	ctx := context.Background()
	const fullname = "rbac-test-vigil" // apart from the objects other tests dry-run
	objs := decode(t, helm(t, "template", "rbac-test", chartDir(), "--namespace", "vigil-system", "--kube-version", "1.37.2"))
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" || !strings.HasPrefix(o.GetName(), fullname+"-virtualip-") {
			continue
		}
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
	}
	aggregateClusterRoles(t)
	for user, role := range map[string]string{"viewer": "view", "editor": "edit", "admin": "admin", "vip-editor": fullname + "-virtualip-editor"} {
		b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "rbac-test-" + user},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
		if err := env.Client.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), b) })
	}

	// Reading comes to view, edit and admin through aggregation only: it shows that worked.
	for _, tc := range []struct {
		user                         string
		create, listVIPs, listAgents bool
	}{
		{"viewer", false, true, true},
		{"editor", false, true, true}, // edit, even cluster-wide
		{"admin", false, true, true},
		{"vip-editor", true, true, false},
		{"nobody", false, false, false},
	} {
		c := impersonate(t, tc.user)
		vip := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: "rbac-test-" + tc.user}, Spec: vigilv1.VirtualIPSpec{Address: "198.18.0.200"}}
		err := c.Create(ctx, vip)
		if tc.create != (err == nil) || (err != nil && !apierrors.IsForbidden(err)) {
			t.Errorf("%s creating a VirtualIP: %v, want allowed=%v", tc.user, err, tc.create)
		}
		if err == nil {
			if err := c.Delete(ctx, vip); err != nil {
				t.Errorf("%s deleting its VirtualIP: %v", tc.user, err)
			}
		}
		for list, want := range map[client.ObjectList]bool{&vigilv1.VirtualIPList{}: tc.listVIPs, &vigilv1.NodeAgentList{}: tc.listAgents} {
			if err := c.List(ctx, list); want != (err == nil) {
				t.Errorf("%s listing %T: %v, want allowed=%v", tc.user, list, err, want)
			}
		}
	}
}

// aggregateClusterRoles does what kube-controller-manager's ClusterRole aggregation
// controller does (the test's API server runs without it): every ClusterRole with an
// aggregation rule gets the rules of the ClusterRoles its selectors match.
func aggregateClusterRoles(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var all rbacv1.ClusterRoleList
	if err := env.Client.List(ctx, &all); err != nil {
		t.Fatal(err)
	}
	for i := range all.Items {
		role := &all.Items[i]
		if role.AggregationRule == nil {
			continue
		}
		var rules []rbacv1.PolicyRule
		for _, sel := range role.AggregationRule.ClusterRoleSelectors {
			s, err := metav1.LabelSelectorAsSelector(&sel)
			if err != nil {
				t.Fatal(err)
			}
			for _, other := range all.Items {
				if other.Name != role.Name && s.Matches(labels.Set(other.Labels)) {
					rules = append(rules, other.Rules...)
				}
			}
		}
		role.Rules = rules
		if err := env.Client.Update(ctx, role); err != nil {
			t.Fatal(err)
		}
	}
}

// impersonate is a client acting as user (the test's admin may impersonate).
func impersonate(t *testing.T, user string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
