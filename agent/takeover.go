package agent

import (
	"context"
	"slices"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
)

// apiWatch tells whether the API server answers: one small read a second.
type apiWatch struct {
	reader  client.Reader
	node    string
	metrics *metrics

	mu     sync.Mutex
	lastOK time.Time
}

func (a *apiWatch) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err := a.reader.Get(rctx, client.ObjectKey{Name: a.node}, &vigilv1.NodeAgent{})
		cancel()
		ok := err == nil || client.IgnoreNotFound(err) == nil
		if ok {
			a.mu.Lock()
			a.lastOK = time.Now()
			a.mu.Unlock()
		}
		a.metrics.setAPIReachable(ok)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// down reports whether the API server has not answered for longer than d.
func (a *apiWatch) down(d time.Duration) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return time.Since(a.lastOK) > d
}

// Takeover decides, during an API outage, whether this node takes a VIP whose owner died:
// the controller cannot elect while the API server is down, but an owner's death must
// still move its VIPs. It is safe because:
//
//   - only the first live standby of the last published status takes it, so at most one
//     node does;
//   - it must see a majority of the agents alive, so only one side of a partition acts;
//   - it waits fenceAfter from the owner's death: an owner that is in fact alive but cut
//     off has by then released its VIPs (it reaches neither the API nor a majority).
//
// When the API server returns the controller elects as usual, normally the same node.
// It is a pure function; it returns the VIPs to take now and when to look again.
func Takeover(node string, vips []vigilv1.VirtualIP, members map[string]membership.State, majority bool, fenceAfter time.Duration, now time.Time) (take []string, again time.Duration) {
	if !majority {
		return nil, 0
	}
	alive := func(n string) bool { s, ok := members[n]; return ok && s.Alive }
	for i := range vips {
		v := &vips[i]
		owner, ok := members[v.Status.Owner]
		if v.Status.Owner == "" || v.Status.Owner == node || !ok || owner.Alive {
			continue
		}
		first := slices.IndexFunc(v.Status.Standbys, alive)
		if first < 0 || v.Status.Standbys[first] != node {
			continue
		}
		if wait := owner.Since.Add(fenceAfter).Sub(now); wait > 0 {
			if again == 0 || wait < again {
				again = wait
			}
			continue
		}
		take = append(take, v.Name)
	}
	return take, again
}
