package metricsauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"vigil.dev/vigil/internal/metricsauth"
)

type fakeReviewer struct {
	allowed map[string]bool
	calls   int
}

func (f *fakeReviewer) Allowed(_ context.Context, token, _, _ string) (bool, string, error) {
	f.calls++
	if f.allowed[token] {
		return true, "", nil
	}
	return false, "denied", nil
}

func serve(h http.Handler, token string) int {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func TestAuthorizerAnswersAndCaches(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	rev := &fakeReviewer{allowed: map[string]bool{"good": true}}
	a := &metricsauth.Authorizer{Review: rev, Now: func() time.Time { return now }}
	h := a.Wrap(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"bad", http.StatusForbidden}, {"good", http.StatusOK}} {
		if got := serve(h, tc.token); got != tc.want {
			t.Errorf("token %q: status %d, want %d", tc.token, got, tc.want)
		}
	}
	calls := rev.calls
	serve(h, "good")
	if rev.calls != calls {
		t.Errorf("a verdict was reviewed again within its minute: %d calls, want %d", rev.calls, calls)
	}
	now = now.Add(2 * time.Minute)
	serve(h, "good")
	if rev.calls != calls+1 {
		t.Errorf("an expired verdict was not reviewed again: %d calls, want %d", rev.calls, calls+1)
	}
}

// Against a real API server: a ServiceAccount bound to a ClusterRole that may get /metrics
// is let in, another is refused, a made-up token is not authenticated.
func TestRealTokenAndAccessReviews(t *testing.T) {
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	ns := "metricsauth"
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		return err
	})
	for _, sa := range []string{"prometheus", "nobody"} {
		mustCreate(t, func() error {
			_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
			return err
		})
	}
	mustCreate(t, func() error {
		_, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
			Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-metrics"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "metrics-reader"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: ns}}}, metav1.CreateOptions{})
		return err
	})
	filter, err := metricsauth.FilterProvider(env.Config, mustHTTPClient(t, env.Config))
	if err != nil {
		t.Fatal(err)
	}
	h, err := filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token string
		want  int
	}{
		{token(t, cs, ns, "prometheus"), http.StatusOK},
		{token(t, cs, ns, "nobody"), http.StatusForbidden},
		{"not-a-token", http.StatusForbidden},
		{"", http.StatusUnauthorized},
	} {
		if got := serve(h, tc.token); got != tc.want {
			t.Errorf("status %d, want %d", got, tc.want)
		}
	}
}

func mustCreate(t *testing.T, create func() error) {
	t.Helper()
	if err := create(); err != nil {
		t.Fatal(err)
	}
}

func mustHTTPClient(t *testing.T, cfg *rest.Config) *http.Client {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return hc
}

func token(t *testing.T, cs kubernetes.Interface, ns, sa string) string {
	t.Helper()
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}
