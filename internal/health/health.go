// Package health holds the readiness checks both binaries serve on /readyz, so that a
// Pod is Ready only when it can do its job, not merely when its process answers.
package health

import (
	"context"
	"errors"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// cacheSyncWait bounds how long one readiness probe waits for the informers.
const cacheSyncWait = 100 * time.Millisecond

// CacheSynced is ready once every informer of the manager's cache has listed its objects:
// before that, decisions would be made on an empty view of the cluster.
func CacheSynced(c cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), cacheSyncWait)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("the API cache has not synced yet")
		}
		return nil
	}
}

// Func adapts a function returning nil when ready (or why not) to a healthz.Checker.
func Func(ready func() error) healthz.Checker {
	return func(*http.Request) error { return ready() }
}
