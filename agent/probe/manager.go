package probe

import (
	"context"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// Health is a VIP's eligibility on this node: every check passing.
type Health struct {
	Eligible bool
	Reason   string // why not eligible, or what made it eligible again
}

// Manager runs the health checks of every VIP on this node. It reports eligibility
// transitions only, never individual probe results.
type Manager struct {
	env      Env
	log      logr.Logger
	onChange func(vip string, h Health)

	mu   sync.Mutex
	vips map[string]*vipChecks
	wg   sync.WaitGroup
}

type vipChecks struct {
	target Target
	checks map[string]*runningCheck
	health Health
}

type runningCheck struct {
	spec   vigilv1.HealthCheck
	cancel context.CancelFunc
	state  State
	reason string
}

// NewManager returns a Manager; onChange is called (from probe goroutines, never with the
// Manager's lock held) whenever a VIP's eligibility changes.
func NewManager(env Env, log logr.Logger, onChange func(vip string, h Health)) *Manager {
	return &Manager{env: env, log: log, onChange: onChange, vips: map[string]*vipChecks{}}
}

// Set runs exactly these checks for the VIP. Checks whose spec and target did not change
// keep running with their state; changed and new ones start from Unknown; removed ones stop.
func (m *Manager) Set(vip string, target Target, checks []vigilv1.HealthCheck) {
	m.mu.Lock()
	v, ok := m.vips[vip]
	if !ok {
		v = &vipChecks{target: target, checks: map[string]*runningCheck{}}
		m.vips[vip] = v
	}
	retarget := v.target != target
	v.target = target
	wanted := map[string]bool{}
	for _, c := range checks {
		wanted[c.Name] = true
		if rc, ok := v.checks[c.Name]; ok && !retarget && equality.Semantic.DeepEqual(rc.spec, c) {
			continue
		}
		// A changed check starts from the old verdict, so that editing a VirtualIP does not
		// make healthy nodes ineligible until the new probes have run.
		carried := Unknown
		if rc, ok := v.checks[c.Name]; ok {
			rc.cancel()
			carried = rc.state
		}
		m.start(vip, v, c, carried)
	}
	for name, rc := range v.checks {
		if !wanted[name] {
			rc.cancel()
			delete(v.checks, name)
		}
	}
	changed, h := m.updateHealth(v)
	m.mu.Unlock()
	if changed {
		m.onChange(vip, h)
	}
}

// start runs one check from state initial; m.mu is held.
func (m *Manager) start(vip string, v *vipChecks, c vigilv1.HealthCheck, initial State) {
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningCheck{spec: *c.DeepCopy(), cancel: cancel, state: initial, reason: c.Name + ": no verdict yet"}
	v.checks[c.Name] = rc
	prober, err := New(c, v.target, m.env)
	if err != nil {
		rc.state, rc.reason = Failing, err.Error()
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.run(ctx, vip, rc, prober)
	}()
}

func (m *Manager) run(ctx context.Context, vip string, rc *runningCheck, prober Prober) {
	interval, timeout := rc.spec.Interval.Duration, rc.spec.EffectiveTimeout()
	if interval <= 0 {
		interval = time.Second
	}
	m.mu.Lock()
	initial := rc.state
	m.mu.Unlock()
	h := Hysteresis{Fall: int(max(rc.spec.FailureThreshold, 1)), Rise: int(max(rc.spec.SuccessThreshold, 1)), State: initial}
	// The first probe soon, at a random point of the first tenth of the interval, so that
	// the checks of many VIPs do not fire together.
	timer := time.NewTimer(time.Duration(rand.Int64N(int64(interval/10) + 1)))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := prober.Probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if changed, reason := h.Observe(prober.String(), err); changed {
			m.transition(vip, rc, h.State, reason)
		}
		// ±2% jitter keeps checks apart without stretching failureThreshold × interval.
		timer.Reset(interval + time.Duration((rand.Float64()*0.04-0.02)*float64(interval)))
	}
}

func (m *Manager) transition(vip string, rc *runningCheck, s State, reason string) {
	m.mu.Lock()
	v, ok := m.vips[vip]
	if !ok || v.checks[rc.spec.Name] != rc { // replaced or removed meanwhile
		m.mu.Unlock()
		return
	}
	rc.state, rc.reason = s, reason
	m.log.Info("health check changed", "vip", vip, "check", rc.spec.Name, "state", s.String(), "reason", reason)
	changed, h := m.updateHealth(v)
	m.mu.Unlock()
	if changed {
		m.onChange(vip, h)
	}
}

// updateHealth recomputes the VIP's eligibility; m.mu is held.
func (m *Manager) updateHealth(v *vipChecks) (bool, Health) {
	h := Health{Eligible: true}
	names := make([]string, 0, len(v.checks))
	for name := range v.checks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if rc := v.checks[name]; rc.state != Passing {
			h = Health{Eligible: false, Reason: rc.reason}
			break
		}
	}
	if h.Eligible && len(names) > 0 {
		h.Reason = "all health checks passing"
	}
	if h.Eligible == v.health.Eligible && h.Reason == v.health.Reason {
		return false, h
	}
	v.health = h
	return true, h
}

// Health returns the VIP's current eligibility (eligible when it has no checks).
func (m *Manager) Health(vip string) Health {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.vips[vip]; ok {
		return v.health
	}
	return Health{Eligible: true}
}

// Remove stops the VIP's checks.
func (m *Manager) Remove(vip string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.vips[vip]; ok {
		for _, rc := range v.checks {
			rc.cancel()
		}
		delete(m.vips, vip)
	}
}

// VIPs lists the VIPs with checks.
func (m *Manager) VIPs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.vips))
	for vip := range m.vips {
		out = append(out, vip)
	}
	sort.Strings(out)
	return out
}

// Stop stops every check and waits until all have returned.
func (m *Manager) Stop() {
	m.mu.Lock()
	for vip, v := range m.vips {
		for _, rc := range v.checks {
			rc.cancel()
		}
		delete(m.vips, vip)
	}
	m.mu.Unlock()
	m.wg.Wait()
}
