package probe

import (
	"context"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// Health is a VIP's eligibility on this node: every check passing.
type Health struct {
	Eligible bool
	Reason   string // why not eligible, or what made it eligible again
	Check    string // the first check that does not pass, when not eligible
	// Unknown: no check fails, but some have no verdict yet (just started): the node is
	// not eligible, and not yet a candidate at all.
	Unknown bool
}

// Manager runs the health checks of every VIP on this node and reports eligibility
// transitions only, never individual probe results.
//
// Identical probes are run once: VIPs whose checks probe the same thing on the same
// schedule (say, 100 VIPs in front of one ingress on :443) share one probe, whose results
// feed each check's own fall/rise hysteresis. Probe cost then grows with the number of
// distinct backends, not of VIPs.
type Manager struct {
	env      Env
	log      logr.Logger
	onChange func(vip string, h Health)

	mu     sync.Mutex
	vips   map[string]*vipChecks
	probes map[string]*sharedProbe // by probeKey
	queue  []*sharedProbe          // the same, for the scheduler to walk
	wg     sync.WaitGroup          // probes running
	timer  *time.Timer             // the scheduler's: runs tick; nil until a probe starts
	wakeAt time.Time               // when the timer fires; zero: not armed

	probesRun, probesFailed atomic.Uint64
}

type vipChecks struct {
	target Target
	checks map[string]*check
	health Health
}

// check is one VIP's health check: its spec, verdict and hysteresis.
type check struct {
	vip    string
	spec   vigilv1.HealthCheck
	key    string
	h      Hysteresis
	reason string
}

// sharedProbe runs one distinct probe for every check that uses it.
type sharedProbe struct {
	key    string
	checks map[*check]struct{}
	prober deadlineProber
	name   string // prober.String()
	ctx    context.Context
	cancel context.CancelFunc

	interval, timeout time.Duration
	// due is when the next probe may start, latest when it must (m.mu); both zero while a
	// probe runs.
	due, latest time.Time
	last        time.Duration // how long the last probe took; m.mu
}

// NewManager returns a Manager; onChange is called (from probe goroutines, never with the
// Manager's lock held) whenever a VIP's eligibility changes.
func NewManager(env Env, log logr.Logger, onChange func(vip string, h Health)) *Manager {
	env.pingers = newPingers(env.NS)
	return &Manager{env: env, log: log, onChange: onChange, vips: map[string]*vipChecks{}, probes: map[string]*sharedProbe{}}
}

// Stats returns how many probes ran and how many of them failed, since the start.
func (m *Manager) Stats() (probes, failures uint64) {
	return m.probesRun.Load(), m.probesFailed.Load()
}

// probeKey identifies what a check probes and when: everything but its name and thresholds.
// An ICMP "gateway" target depends on the VIP's interface and family.
func probeKey(c vigilv1.HealthCheck, t Target) string {
	k := struct {
		ICMP     *vigilv1.ICMPCheck `json:"i,omitempty"`
		TCP      *vigilv1.TCPCheck  `json:"t,omitempty"`
		HTTP     *vigilv1.HTTPCheck `json:"h,omitempty"`
		Interval time.Duration      `json:"iv"`
		Timeout  time.Duration      `json:"to"`
		Iface    string             `json:"if,omitempty"`
		V6       bool               `json:"v6,omitempty"`
	}{ICMP: c.ICMP, TCP: c.TCP, HTTP: c.HTTP, Interval: c.Interval.Duration, Timeout: c.EffectiveTimeout()}
	if c.ICMP != nil && c.ICMP.Target == vigilv1.ICMPTargetGateway {
		k.Iface, k.V6 = t.Interface, t.VIP.Is6()
	}
	b, _ := json.Marshal(k)
	return string(b)
}

// Set runs exactly these checks for the VIP. A check whose spec and probe did not change
// keeps its verdict and hysteresis; a changed one starts from the old verdict (so that
// editing a VirtualIP does not make healthy nodes ineligible until new probes ran); a new
// one starts Unknown; removed ones stop.
func (m *Manager) Set(vip string, target Target, checks []vigilv1.HealthCheck) {
	m.mu.Lock()
	v, ok := m.vips[vip]
	if !ok {
		v = &vipChecks{checks: map[string]*check{}}
		m.vips[vip] = v
	}
	v.target = target
	wanted := map[string]bool{}
	for _, spec := range checks {
		wanted[spec.Name] = true
		key := probeKey(spec, target)
		old, exists := v.checks[spec.Name]
		if exists && old.key == key && equality.Semantic.DeepEqual(old.spec, spec) {
			continue
		}
		c := &check{vip: vip, spec: *spec.DeepCopy(), key: key, reason: spec.Name + ": " + vigilv1.NoVerdictYet,
			h: Hysteresis{Fall: int(max(spec.FailureThreshold, 1)), Rise: int(max(spec.SuccessThreshold, 1))}}
		if exists {
			c.h.State, c.reason = old.h.State, old.reason
			m.detach(old)
		}
		v.checks[spec.Name] = c
		m.attach(c, target)
	}
	for name, c := range v.checks {
		if !wanted[name] {
			m.detach(c)
			delete(v.checks, name)
		}
	}
	changed, h := updateHealth(v)
	m.mu.Unlock()
	if changed {
		m.onChange(vip, h)
	}
}

// attach subscribes c to its probe, starting the probe if it is new; m.mu is held.
func (m *Manager) attach(c *check, t Target) {
	if sp, ok := m.probes[c.key]; ok {
		if c.h.State == Unknown {
			adoptVerdict(c, sp)
		}
		sp.checks[c] = struct{}{}
		return
	}
	prober, err := New(c.spec, t, m.env)
	if err != nil {
		c.h.State, c.reason = Failing, err.Error()
		return
	}
	interval := c.spec.Interval.Duration
	if interval <= 0 {
		interval = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	sp := &sharedProbe{key: c.key, checks: map[*check]struct{}{c: {}}, prober: asDeadlineProber(prober), name: prober.String(),
		ctx: ctx, cancel: cancel, interval: interval, timeout: c.spec.EffectiveTimeout()}
	m.probes[c.key] = sp
	m.queue = append(m.queue, sp)
	// The first probe soon, at a random point of the first tenth of the interval, so that
	// many probes do not fire together.
	m.scheduleLocked(sp, time.Now(), time.Duration(rand.Int64N(int64(interval/10)+1)))
}

// adoptVerdict gives a new check the verdict of a check already fed by the same probe with
// the same fall and rise: both have seen the same results, so the new one need not wait up
// to an interval for the probe's next run (a VirtualIP created beside others with the same
// check is eligible at once, and elected as fast as one without checks).
func adoptVerdict(c *check, sp *sharedProbe) {
	for s := range sp.checks {
		if s.h.State != Unknown && s.h.Fall == c.h.Fall && s.h.Rise == c.h.Rise {
			c.h, c.reason = s.h, s.reason
			return
		}
	}
}

// detach unsubscribes c, stopping its probe when nobody else uses it; m.mu is held.
func (m *Manager) detach(c *check) {
	sp, ok := m.probes[c.key]
	if !ok {
		return
	}
	delete(sp.checks, c)
	if len(sp.checks) == 0 {
		sp.cancel()
		delete(m.probes, c.key)
		m.queue = slices.DeleteFunc(m.queue, func(q *sharedProbe) bool { return q == sp })
	}
}

// probeJitter is how much later than its interval a probe may run (a fraction of it): half
// of it random, to keep probes apart, and half the scheduler's leeway to run probes that
// are due together, on one wake-up of the process, without stretching
// failureThreshold × interval.
const probeJitter = 0.02

// scheduleLocked sets sp's next probe after delay from now, plus up to half the jitter,
// and arms the timer for its latest start; m.mu is held.
func (m *Manager) scheduleLocked(sp *sharedProbe, now time.Time, delay time.Duration) {
	half := time.Duration(float64(sp.interval) * probeJitter / 2)
	sp.due = now.Add(delay + time.Duration(rand.Int64N(int64(half)+1)))
	sp.latest = sp.due.Add(half)
	m.armLocked(sp.latest)
}

// armLocked makes the scheduler's timer fire at t, unless it fires earlier; m.mu is held.
func (m *Manager) armLocked(t time.Time) {
	switch {
	case m.timer == nil:
		m.timer = time.AfterFunc(time.Until(t), m.tick)
	case m.wakeAt.IsZero() || t.Before(m.wakeAt):
		m.timer.Reset(time.Until(t))
	default:
		return
	}
	m.wakeAt = t
}

// tick is the scheduler: one timer for every probe, which fires at the earliest latest
// start and starts every probe then due. Probes due within the same leeway start on one
// wake-up, where a timer and a goroutine of their own per probe wake the process once each.
// The timer's own goroutine runs the last of them.
func (m *Manager) tick() {
	var due []*sharedProbe
	m.mu.Lock()
	if m.timer == nil { // stopped
		m.mu.Unlock()
		return
	}
	now := time.Now()
	var next time.Time
	for _, sp := range m.queue {
		switch {
		case sp.due.IsZero(): // running
		case !sp.due.After(now):
			sp.due, sp.latest = time.Time{}, time.Time{}
			due = append(due, sp)
		case next.IsZero() || sp.latest.Before(next):
			next = sp.latest
		}
	}
	m.wakeAt = time.Time{}
	if !next.IsZero() {
		m.armLocked(next)
	}
	m.wg.Add(len(due))
	m.mu.Unlock()
	for i, sp := range due {
		if i == len(due)-1 {
			m.probeOnce(sp)
		} else {
			go m.probeOnce(sp)
		}
	}
}

// asDeadlineProber adapts a Prober of another package (none today) to the Manager.
func asDeadlineProber(p Prober) deadlineProber {
	if dp, ok := p.(deadlineProber); ok {
		return dp
	}
	return withTimeout{p}
}

type withTimeout struct{ Prober }

func (w withTimeout) probe(ctx context.Context, deadline time.Time) error {
	ctx, cancel := withDeadline(ctx, deadline)
	defer cancel()
	return w.Probe(ctx)
}

func (m *Manager) probeOnce(sp *sharedProbe) {
	defer m.wg.Done()
	start := time.Now()
	err := sp.prober.probe(sp.ctx, start.Add(sp.timeout))
	end := time.Now()
	if sp.ctx.Err() != nil {
		return
	}
	m.probesRun.Add(1)
	if err != nil {
		m.probesFailed.Add(1)
	}
	m.observe(sp, err, end, end.Sub(start))
}

// observe feeds one result to every check of the probe, schedules the next probe, and
// reports eligibility changes.
func (m *Manager) observe(sp *sharedProbe, err error, end time.Time, took time.Duration) {
	type report struct {
		vip string
		h   Health
	}
	var reports []report
	var touched []string
	m.mu.Lock()
	if m.probes[sp.key] != sp { // stopped meanwhile
		m.mu.Unlock()
		return
	}
	sp.last = took
	// Then one every interval after the last ended.
	m.scheduleLocked(sp, end, sp.interval)
	for c := range sp.checks {
		if changed, reason := c.h.Observe(sp.name, err); changed {
			c.reason = reason
			if !slices.Contains(touched, c.vip) {
				touched = append(touched, c.vip)
			}
			m.log.Info("health check changed", "vip", c.vip, "check", c.spec.Name, "state", c.h.State.String(), "reason", reason)
		}
	}
	for _, vip := range touched {
		if v, ok := m.vips[vip]; ok {
			if changed, h := updateHealth(v); changed {
				reports = append(reports, report{vip, h})
			}
		}
	}
	m.mu.Unlock()
	for _, r := range reports {
		m.onChange(r.vip, r.h)
	}
}

// updateHealth recomputes the VIP's eligibility; m.mu is held.
func updateHealth(v *vipChecks) (bool, Health) {
	h := Health{Eligible: true}
	names := make([]string, 0, len(v.checks))
	for name := range v.checks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := v.checks[name]
		if c.h.State == Failing {
			h = Health{Eligible: false, Reason: c.reason, Check: name}
			break
		}
		if c.h.State == Unknown && h.Eligible {
			h = Health{Eligible: false, Reason: c.reason, Check: name, Unknown: true}
		}
	}
	if h.Eligible && len(names) > 0 {
		h.Reason = "all health checks passing"
	}
	if h == v.health {
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
		for _, c := range v.checks {
			m.detach(c)
		}
		delete(m.vips, vip)
	}
}

// VIPs lists the VIPs with checks.
func (m *Manager) VIPs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.vips))
}

// Probes is the number of distinct probes running.
func (m *Manager) Probes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.probes)
}

// Stop stops every probe, waits until all have returned, and closes the shared sockets.
func (m *Manager) Stop() {
	m.mu.Lock()
	for key, sp := range m.probes {
		sp.cancel()
		delete(m.probes, key)
	}
	m.queue = nil
	m.vips = map[string]*vipChecks{}
	if m.timer != nil {
		m.timer.Stop()
		m.timer, m.wakeAt = nil, time.Time{}
	}
	m.mu.Unlock()
	m.wg.Wait()
	m.env.pingers.close()
}
