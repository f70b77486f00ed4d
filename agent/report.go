package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/chans"
)

// +kubebuilder:rbac:groups=vigil.dev,resources=nodeagents,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=vigil.dev,resources=nodeagents/status,verbs=get;update;patch

// reporter writes the node's NodeAgent: its heartbeat every interval, and its per-VIP
// report and draining flag whenever they change — never once per probe.
type reporter struct {
	client client.Client
	node   string
	clock  clock.PassiveClock

	mu         sync.Mutex
	vips       []vigilv1.VIPEligibility // wanted, sorted by name
	draining   bool
	memberAddr string
	gateways   []string
	judged     bool // vips has been set: a VIP left out of it is settled (omitSettled)
	version    int  // bumped on every change
	written    int  // version last written
	kick       chan struct{}
}

func newReporter(c client.Client, node string, clk clock.PassiveClock) *reporter {
	return &reporter{client: c, node: node, clock: clk, kick: make(chan struct{}, 1), written: -1}
}

// mergeReport carries each VIP's Since over from the previous report while its eligibility
// is unchanged, and sets it to now when it changed. Reasons are cut to what the schema
// takes: a report that fails validation would never be written. Pure.
func mergeReport(prev, next []vigilv1.VIPEligibility, now metav1.MicroTime) []vigilv1.VIPEligibility {
	out := slices.Clone(next)
	type key struct {
		name string
		uid  types.UID
	}
	before := make(map[key]vigilv1.VIPEligibility, len(prev))
	for _, p := range prev {
		before[key{p.Name, p.UID}] = p
	}
	for i := range out {
		out[i].Reason = vigilv1.Truncate(out[i].Reason, vigilv1.MaxReasonLength)
		out[i].Since = now
		if p, ok := before[key{out[i].Name, out[i].UID}]; ok && p.Eligible == out[i].Eligible {
			out[i].Since = p.Since
		}
	}
	slices.SortFunc(out, func(a, b vigilv1.VIPEligibility) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func sameReport(a, b []vigilv1.VIPEligibility) bool {
	return slices.EqualFunc(a, b, func(x, y vigilv1.VIPEligibility) bool {
		return x.Name == y.Name && x.UID == y.UID && x.Eligible == y.Eligible && x.Pending == y.Pending && x.Reason == y.Reason &&
			x.Interface == y.Interface && x.BoundEpoch == y.BoundEpoch && x.HardwareAddress == y.HardwareAddress
	})
}

// Set replaces the per-VIP report: an entry for every VIP the node may hold but the
// settled ones (omitSettled).
func (r *reporter) Set(vips []vigilv1.VIPEligibility) {
	r.update(func() bool {
		merged := mergeReport(r.vips, vips, metav1.NewMicroTime(r.clock.Now()))
		if r.judged && sameReport(merged, r.vips) {
			return false
		}
		r.vips, r.judged = merged, true
		return true
	})
}

// Settled entries: a NodeAgent lists only the VIPs that are news to the controller.
const (
	// omitSettledAfter is the NodeAgent's omitSettledAfter: a VirtualIP older than this
	// without an entry is one the node is eligible for and does not hold. Longer than a new
	// VirtualIP's first election waits for the nodes' verdicts (2 s), with room for agents
	// slowed by a burst of creations; an agent later than that is taken as eligible, and if
	// it is not, it says so when it gets there and the VIP moves.
	omitSettledAfter = 10 * time.Second
	// clockSkewAllowance is how much later than omitSettledAfter the agent leaves an entry
	// out: the reader measures a VirtualIP's age on its own clock, and clocks apart by less
	// than this agree on which ones are that old.
	clockSkewAllowance = 5 * time.Second
)

// omitSettled leaves out the entries of VIPs the node is eligible for, does not hold and
// has no check pending for, created more than omitSettledAfter + clockSkewAllowance
// before now: with a thousand VIPs, an entry for each made every NodeAgent a quarter of a
// megabyte, written whole on every change and sent to the controller and every agent. It
// returns when the next entry becomes settled (0: none will by itself). Pure.
func omitSettled(reports []vigilv1.VIPEligibility, vips []vigilv1.VirtualIP, now time.Time) ([]vigilv1.VIPEligibility, time.Duration) {
	created := make(map[types.UID]time.Time, len(vips))
	for i := range vips {
		created[vips[i].UID] = vips[i].CreationTimestamp.Time
	}
	var again time.Duration
	out := make([]vigilv1.VIPEligibility, 0, len(reports))
	for _, r := range reports {
		at, ok := created[r.UID]
		if !ok || !r.Eligible || r.Pending || r.BoundEpoch != 0 {
			out = append(out, r)
			continue
		}
		settles := at.Add(omitSettledAfter + clockSkewAllowance).Sub(now)
		if settles < 0 {
			continue
		}
		out = append(out, r)
		if again == 0 || settles < again {
			again = settles
		}
	}
	return out, again
}

// SetMemberlistAddress publishes where this agent's memberlist member listens.
func (r *reporter) SetMemberlistAddress(addr string) {
	r.update(func() bool { return setIfChanged(&r.memberAddr, addr) })
}

// SetGateways publishes the node's default gateways (at most 4, the schema's limit).
func (r *reporter) SetGateways(gws []string) {
	slices.Sort(gws)
	gws = gws[:min(len(gws), 4)]
	r.update(func() bool {
		if slices.Equal(r.gateways, gws) {
			return false
		}
		r.gateways = gws
		return true
	})
}

// SetDraining marks the node as handing its VIPs over.
func (r *reporter) SetDraining(d bool) {
	r.update(func() bool { return setIfChanged(&r.draining, d) })
}

// update runs change under the lock; if it changed the report, the report gets a new
// version and the writer is woken.
func (r *reporter) update(change func() bool) {
	r.mu.Lock()
	changed := change()
	if changed {
		r.version++
	}
	r.mu.Unlock()
	if changed {
		r.poke()
	}
}

func setIfChanged[T comparable](field *T, v T) bool {
	if *field == v {
		return false
	}
	*field = v
	return true
}

func (r *reporter) poke() { chans.TrySend(r.kick, struct{}{}) }

// Flush writes now and returns once written (or ctx is done).
func (r *reporter) Flush(ctx context.Context) error {
	return r.write(ctx, true)
}

// writeRetry is how a failed NodeAgent write is retried: soon at first, then less and
// less often, jittered — after an API outage the agents of every node must not all call
// the recovering API server in the same instant, nor every 200 ms each.
func writeRetry() wait.Backoff {
	return wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: math.MaxInt32, Cap: 5 * time.Second}
}

// Run creates the NodeAgent and keeps it written until ctx is done.
func (r *reporter) Run(ctx context.Context, heartbeat time.Duration) {
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	r.poke() // the first write at once
	retry := writeRetry()
	for {
		full := false
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
			full = true
		case <-t.C:
		}
		err := r.write(ctx, full)
		if err == nil || ctx.Err() != nil {
			retry = writeRetry()
			continue
		}
		log.FromContext(ctx).Error(err, "writing NodeAgent status")
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry.Step()):
		}
		r.poke() // try again
	}
}

// write patches the heartbeat, and the whole report when it changed since the last write.
func (r *reporter) write(ctx context.Context, full bool) error {
	r.mu.Lock()
	version := r.version
	status := map[string]any{
		"heartbeatTime":     metav1.NewTime(r.clock.Now()).Rfc3339Copy(),
		"draining":          r.draining,
		"memberlistAddress": r.memberAddr,
		"gateways":          r.gateways,
	}
	if full || version != r.written {
		vips := r.vips
		if vips == nil {
			vips = []vigilv1.VIPEligibility{}
		}
		status["vips"] = vips
		status["omitSettledAfter"] = nil // merge patch: removed until the first judgement
		if r.judged {
			status["omitSettledAfter"] = metav1.Duration{Duration: omitSettledAfter}
		}
	}
	r.mu.Unlock()
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	na := &vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: r.node}}
	err = r.client.Status().Patch(ctx, na, client.RawPatch(types.MergePatchType, patch))
	if apierrors.IsNotFound(err) {
		if err := r.create(ctx); err != nil {
			return err
		}
		err = r.client.Status().Patch(ctx, na, client.RawPatch(types.MergePatchType, patch))
	}
	if err != nil {
		return fmt.Errorf("patching NodeAgent %s: %w", r.node, err)
	}
	r.mu.Lock()
	if _, ok := status["vips"]; ok {
		r.written = version
	}
	r.mu.Unlock()
	return nil
}

// create makes the node's NodeAgent, owned by its Node: deleting the Node deletes it (the
// garbage collector), so that a node gone for good stops counting among the agents.
func (r *reporter) create(ctx context.Context) error {
	na := &vigilv1.NodeAgent{ObjectMeta: metav1.ObjectMeta{Name: r.node}}
	var node corev1.Node
	if err := r.client.Get(ctx, client.ObjectKey{Name: r.node}, &node); err != nil {
		return fmt.Errorf("reading Node %s to own its NodeAgent: %w", r.node, err)
	}
	na.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
	if err := r.client.Create(ctx, na); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating NodeAgent %s: %w", r.node, err)
	}
	return nil
}
