package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// faultInjector applies a schedule's faults to a lab and undoes them, each on time and
// each whatever happens: when the run is cancelled every active fault is undone at once.
type faultInjector struct {
	l      *Lab
	c      client.Client
	agents *agentKeeper
	vips   []ChaosVIP
	logf   func(string, ...any)
	start  time.Time // the fault phase's start: PlannedFault.At counts from it
	locks  faultLocks

	mu      sync.Mutex
	records []FaultRecord
}

// run injects every fault of the plan at its time and returns, once all are undone, what
// was done. A fault waits for an earlier one on the same target to be undone (an undo can
// take longer than planned, e.g. a restored node's service).
func (fi *faultInjector) run(ctx context.Context, plan []PlannedFault) []FaultRecord {
	var wg sync.WaitGroup
	for _, f := range plan {
		if !sleepUntil(ctx, fi.start.Add(f.At)) {
			break
		}
		wg.Go(func() { fi.one(ctx, f) })
	}
	wg.Wait()
	fi.mu.Lock()
	defer fi.mu.Unlock()
	slices.SortStableFunc(fi.records, func(a, b FaultRecord) int { return a.Applied.Compare(b.Applied) })
	return fi.records
}

// one applies a fault, keeps it for its duration (or until ctx is done) and undoes it.
func (fi *faultInjector) one(ctx context.Context, f PlannedFault) {
	release := fi.locks.acquire(f)
	defer release()
	if ctx.Err() != nil {
		return // cancelled while an earlier fault on the target was being undone
	}
	rec := FaultRecord{PlannedFault: f, Applied: time.Now()}
	undo, err := fi.inject(ctx, f)
	if err != nil {
		rec.Err, rec.Undone = "applying: "+err.Error(), time.Now()
		fi.logf("chaos +%.1fs: %s failed: %v", rec.Applied.Sub(fi.start).Seconds(), f, err)
		fi.record(rec)
		return
	}
	fi.logf("chaos +%.1fs: %s for %v", rec.Applied.Sub(fi.start).Seconds(), f, f.For)
	sleepUntil(ctx, time.Now().Add(f.For))
	if err := undo(); err != nil {
		rec.Err = "undoing: " + err.Error()
		fi.logf("chaos: undoing %s failed: %v", f, err)
	}
	rec.Undone = time.Now()
	fi.record(rec)
}

// sleepUntil waits until t, and reports false if ctx is done first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

func (fi *faultInjector) record(r FaultRecord) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	fi.records = append(fi.records, r)
}

// inject applies one fault and returns what undoes it.
func (fi *faultInjector) inject(ctx context.Context, f PlannedFault) (undo func() error, err error) {
	l := fi.l
	switch f.Kind {
	case FaultNodeCrash:
		return fi.crashNode(f.Node)
	case FaultAgentKill:
		return fi.killAgent(f.Node)
	case FaultLinkFlap:
		return func() error { return l.SetLink(f.Node, true) }, l.SetLink(f.Node, false)
	case FaultIsolateNode, FaultSplitFromPeers:
		return fi.partition(f)
	case FaultAPIStop:
		return stopAPIServer(l)
	case FaultControllerKill:
		return killController(l)
	case FaultServiceStop:
		return func() error { return l.StartService(f.Node) }, l.StopService(f.Node)
	case FaultCPUBurn:
		return burnCPU(l, f.For)
	case FaultVIPRecreate:
		return fi.deleteVIP(ctx, f.VIP)
	}
	return nil, fmt.Errorf("unknown fault kind %q", f.Kind)
}

// crashNode cuts the node's power; the undo boots it: without the VIPs it held, link up,
// HTTP service and agent started.
func (fi *faultInjector) crashNode(node string) (func() error, error) {
	fi.agents.hold(node)
	if err := fi.l.CrashNode(node); err != nil {
		return nil, errors.Join(err, fi.agents.release(node))
	}
	return func() error {
		// Each step also when an earlier one failed: a half-restored node beats a dead one.
		forgetErr := fi.l.forgetAddrs(node, vipAddrs(fi.vips))
		restoreErr := fi.l.RestoreNode(node)
		return errors.Join(forgetErr, restoreErr, fi.agents.release(node))
	}, nil
}

// killAgent SIGKILLs the node's agent; the undo starts it again, as the DaemonSet would.
func (fi *faultInjector) killAgent(node string) (func() error, error) {
	fi.agents.hold(node)
	p, ok := fi.l.Process(node + "/vigil-agent")
	if !ok || !p.Running() {
		return nil, errors.Join(fmt.Errorf("no agent runs on %s", node), fi.agents.release(node))
	}
	if err := p.Kill(); err != nil {
		return nil, errors.Join(err, fi.agents.release(node))
	}
	return func() error { return fi.agents.release(node) }, nil
}

// partition cuts the node off from its peers and the control plane, and for
// FaultIsolateNode from the client too.
func (fi *faultInjector) partition(f PlannedFault) (func() error, error) {
	rest := []string{"cp"}
	if f.Kind == FaultIsolateNode {
		rest = append(rest, "client")
	}
	for _, n := range fi.l.Nodes {
		if n.Name != f.Node {
			rest = append(rest, n.Name)
		}
	}
	if err := fi.l.Partition([]string{f.Node}, rest); err != nil {
		return nil, err
	}
	return fi.l.Heal, nil
}

// stopAPIServer freezes kube-apiserver; the undo lets it go on.
func stopAPIServer(l *Lab) (func() error, error) {
	api, err := l.APIServer()
	if err != nil {
		return nil, err
	}
	if err := api.Signal(syscall.SIGSTOP); err != nil {
		return nil, err
	}
	return func() error { return api.Signal(syscall.SIGCONT) }, nil
}

// killController SIGKILLs the controller; the lab restarts it a second later, and the
// undo waits for that.
func killController(l *Lab) (func() error, error) {
	p, ok := l.Process("cp/vigil-controller")
	if !ok || !p.Running() {
		return nil, errors.New("no controller runs")
	}
	old := p.PID()
	if err := p.Kill(); err != nil {
		return nil, err
	}
	return func() error {
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if cur, ok := l.Process("cp/vigil-controller"); ok && cur.Running() && cur.PID() != old {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return errors.New("the lab did not restart the controller within 15s")
	}, nil
}

// burnCPU keeps every core busy for d (at most 4 burners); the burners stop by themselves,
// and the undo kills any that has not.
func burnCPU(l *Lab, d time.Duration) (func() error, error) {
	procs, err := l.StarveCPU(min(runtime.NumCPU(), 4), d)
	undo := func() error {
		var errs []error
		for _, p := range procs {
			errs = append(errs, p.Kill())
		}
		return errors.Join(errs...)
	}
	if err != nil {
		return nil, errors.Join(err, undo())
	}
	return undo, nil
}

// deleteVIP deletes the VirtualIP; the undo creates it again under the same name, once
// the old object is gone.
func (fi *faultInjector) deleteVIP(ctx context.Context, name string) (func() error, error) {
	i := slices.IndexFunc(fi.vips, func(v ChaosVIP) bool { return v.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("no chaos VirtualIP %q", name)
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := fi.c.Delete(dctx, &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		return nil, fmt.Errorf("deleting VirtualIP %s: %w", name, err)
	}
	return func() error {
		// A fresh context: the undo also runs when the run is cancelled.
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for {
			err := fi.c.Create(cctx, virtualIPFor(fi.vips[i]))
			if err == nil || !apierrors.IsAlreadyExists(err) {
				return err
			}
			select {
			case <-cctx.Done():
				return fmt.Errorf("re-creating VirtualIP %s: %w", name, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}, nil
}

// virtualIPFor is the chaos run's VirtualIP for v: a TCP check of the node's HTTP service
// when v is checked (the API's defaults: every 1 s, 3 failures), none otherwise.
func virtualIPFor(v ChaosVIP) *vigilv1.VirtualIP {
	vip := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: v.Name}, Spec: vigilv1.VirtualIPSpec{Address: v.Address.String()}}
	if v.Checked {
		vip.Spec.HealthChecks = []vigilv1.HealthCheck{{Name: "web", TCP: &vigilv1.TCPCheck{Host: "127.0.0.1", Port: HTTPPort}}}
	}
	return vip
}

func vipAddrs(vips []ChaosVIP) []netip.Addr {
	out := make([]netip.Addr, len(vips))
	for i, v := range vips {
		out[i] = v.Address
	}
	return out
}

// faultLocks keep two faults off one target even when an undo runs late: one fault per
// node, per VirtualIP, one partition (the lab has one partition table), and nothing that
// writes through the API server while it is stopped.
type faultLocks struct {
	api   sync.RWMutex
	mu    sync.Mutex
	named map[string]*sync.Mutex
}

// acquire takes the fault's locks, the API server's first and the others in order, so
// that two faults never wait on each other in a circle.
func (fl *faultLocks) acquire(f PlannedFault) (release func()) {
	var keys []string
	switch {
	case f.Node != "":
		keys = append(keys, "node/"+f.Node)
	case f.VIP != "":
		keys = append(keys, "vip/"+f.VIP)
	default:
		keys = append(keys, string(f.Kind))
	}
	if isPartition(f.Kind) {
		keys = append(keys, "partition")
	}
	slices.Sort(keys)
	switch {
	case f.Kind == FaultAPIStop:
		fl.api.Lock()
	case faultSpecs[f.Kind].needsAPI:
		fl.api.RLock()
	}
	var held []*sync.Mutex
	for _, k := range keys {
		m := fl.mutex(k)
		m.Lock()
		held = append(held, m)
	}
	return func() {
		for _, m := range held {
			m.Unlock()
		}
		switch {
		case f.Kind == FaultAPIStop:
			fl.api.Unlock()
		case faultSpecs[f.Kind].needsAPI:
			fl.api.RUnlock()
		}
	}
}

func (fl *faultLocks) mutex(key string) *sync.Mutex {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.named == nil {
		fl.named = map[string]*sync.Mutex{}
	}
	if fl.named[key] == nil {
		fl.named[key] = &sync.Mutex{}
	}
	return fl.named[key]
}
