// Package metricsauth guards the metrics endpoint the way the Kubernetes components guard
// theirs: the scraper's bearer token is checked with a TokenReview, and its permission to
// get the URL with a SubjectAccessReview (grant it with a ClusterRole allowing `get` on
// the nonResourceURL /metrics).
//
// controller-runtime's own filter does the same through k8s.io/apiserver, which adds 20 MiB
// to each binary and to the agent's memory on every node; this is the part Vigil needs.
package metricsauth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

const (
	// cacheTTL is how long a verdict on a token is reused: Prometheus scrapes every 15-60 s,
	// and each scrape would otherwise cost the API server two requests.
	cacheTTL = time.Minute
	// cacheSize bounds the verdicts kept (a handful of scrapers in practice).
	cacheSize = 256
	// reviewTimeout bounds the API round trips of one request.
	reviewTimeout = 10 * time.Second
)

// FilterProvider is a controller-runtime metrics FilterProvider.
func FilterProvider(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	cs, err := kubernetes.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("metrics authorization client: %w", err)
	}
	a := &Authorizer{Review: &apiReviewer{cs: cs}, Now: time.Now}
	return func(log logr.Logger, next http.Handler) (http.Handler, error) {
		return a.Wrap(log, next), nil
	}, nil
}

// Reviewer asks the API server who a token is and whether that user may get a path.
type Reviewer interface {
	// Allowed reports whether the token authenticates a user allowed to verb path; reason
	// says why not.
	Allowed(ctx context.Context, token, verb, path string) (ok bool, reason string, err error)
}

// Authorizer lets through requests whose token the Reviewer allows, caching verdicts.
type Authorizer struct {
	Review Reviewer
	Now    func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]verdict
}

type verdict struct {
	ok      bool
	reason  string
	expires time.Time
}

// Wrap returns next behind authentication (401 without a valid token) and authorization
// (403 when the token's user may not get the URL).
func (a *Authorizer) Wrap(log logr.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			http.Error(w, "Unauthorized: a bearer token is required", http.StatusUnauthorized)
			return
		}
		v, err := a.decide(r.Context(), token, strings.ToLower(r.Method), r.URL.Path)
		if err != nil {
			log.Error(err, "cannot review a metrics request", "path", r.URL.Path)
			http.Error(w, "cannot review the request", http.StatusInternalServerError)
			return
		}
		if !v.ok {
			http.Error(w, "Forbidden: "+v.reason, http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *Authorizer) decide(ctx context.Context, token, verb, path string) (verdict, error) {
	key := sha256.Sum256([]byte(verb + " " + path + " " + token))
	now := a.Now()
	a.mu.Lock()
	v, ok := a.cache[key]
	a.mu.Unlock()
	if ok && now.Before(v.expires) {
		return v, nil
	}
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	allowed, reason, err := a.Review.Allowed(ctx, token, verb, path)
	if err != nil {
		return verdict{}, err
	}
	v = verdict{ok: allowed, reason: reason, expires: now.Add(cacheTTL)}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache == nil || len(a.cache) >= cacheSize {
		a.cache = map[[32]byte]verdict{} // simplest bound: start over
	}
	a.cache[key] = v
	return v, nil
}

// apiReviewer is the Reviewer on the API server's TokenReview and SubjectAccessReview.
type apiReviewer struct{ cs kubernetes.Interface }

func (r *apiReviewer) Allowed(ctx context.Context, token, verb, path string) (bool, string, error) {
	tr, err := r.cs.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, "", fmt.Errorf("TokenReview: %w", err)
	}
	if !tr.Status.Authenticated {
		return false, "the token does not authenticate: " + tr.Status.Error, nil
	}
	u := tr.Status.User
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := r.cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Username, Groups: u.Groups, UID: u.UID, Extra: extra,
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, "", fmt.Errorf("SubjectAccessReview: %w", err)
	}
	if !sar.Status.Allowed {
		return false, fmt.Sprintf("%s may not %s %s", u.Username, verb, path), nil
	}
	return true, "", nil
}
