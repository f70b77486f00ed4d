package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/scheme"
	"vigil.dev/vigil/test/lab"
)

// vipWatch follows every VirtualIP with a watch (one list, then events: polling a
// thousand VirtualIPs would load the API server it measures), dating on this process's
// clock when each was first seen with an owner and with Ready=True.
type vipWatch struct {
	mu     sync.Mutex
	owned  map[string]time.Time
	ready  map[string]time.Time
	owner  map[string]string
	isRdy  map[string]bool
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

// watchVIPs starts following the VirtualIPs of lab l.
func watchVIPs(ctx context.Context, l *lab.Lab) (*vipWatch, error) {
	cfg, err := l.RESTConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &vipWatch{owned: map[string]time.Time{}, ready: map[string]time.Time{}, owner: map[string]string{},
		isRdy: map[string]bool{}, cancel: cancel, done: make(chan struct{})}
	var list vigilv1.VirtualIPList
	if err := c.List(ctx, &list); err != nil {
		cancel()
		return nil, fmt.Errorf("listing VirtualIPs: %w", err)
	}
	for i := range list.Items {
		w.see(&list.Items[i], time.Now())
	}
	go w.run(ctx, c, list.ResourceVersion)
	return w, nil
}

// run follows the watch from resourceVersion rv, watching again (after a fresh list)
// whenever the API server ends it, until ctx is done.
func (w *vipWatch) run(ctx context.Context, c client.WithWatch, rv string) {
	defer close(w.done)
	for ctx.Err() == nil {
		wi, err := c.Watch(ctx, &vigilv1.VirtualIPList{}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
		if err != nil {
			w.fail(err)
			return
		}
		for ev := range wi.ResultChan() {
			now := time.Now()
			switch ev.Type {
			case watch.Added, watch.Modified:
				if v, ok := ev.Object.(*vigilv1.VirtualIP); ok {
					w.see(v, now)
					rv = v.ResourceVersion
				}
			case watch.Bookmark:
				if v, ok := ev.Object.(*vigilv1.VirtualIP); ok {
					rv = v.ResourceVersion
				}
			case watch.Error:
				rv = "" // expired: list again
			}
		}
		wi.Stop()
		if rv == "" {
			var list vigilv1.VirtualIPList
			if err := c.List(ctx, &list); err != nil {
				w.fail(err)
				return
			}
			for i := range list.Items {
				w.see(&list.Items[i], time.Now())
			}
			rv = list.ResourceVersion
		}
	}
}

func (w *vipWatch) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// see records what one version of a VirtualIP shows.
func (w *vipWatch) see(v *vigilv1.VirtualIP, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.owner[v.Name] = v.Status.Owner
	if _, ok := w.owned[v.Name]; !ok && v.Status.Owner != "" {
		w.owned[v.Name] = now
	}
	ready := meta.IsStatusConditionTrue(v.Status.Conditions, vigilv1.ConditionReady) && v.Status.Owner != ""
	w.isRdy[v.Name] = ready
	if _, ok := w.ready[v.Name]; !ok && ready {
		w.ready[v.Name] = now
	}
}

// times returns when each of names was first owned and first Ready (zero: not yet).
func (w *vipWatch) times(names []string) (owned, ready []time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	owned, ready = make([]time.Time, len(names)), make([]time.Time, len(names))
	for i, n := range names {
		owned[i], ready[i] = w.owned[n], w.ready[n]
	}
	return owned, ready
}

// owners returns each VirtualIP's owner now, and how many are Ready now.
func (w *vipWatch) owners() (map[string]string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.owner))
	n := 0
	for k, v := range w.owner {
		out[k] = v
		if w.isRdy[k] {
			n++
		}
	}
	return out, n
}

// Err is the watch's failure, if it failed.
func (w *vipWatch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stop ends the watch.
func (w *vipWatch) Stop() {
	w.cancel()
	<-w.done
}
