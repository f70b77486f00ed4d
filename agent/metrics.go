package agent

import (
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netns"

	"vigil.dev/vigil/agent/announce"
	"vigil.dev/vigil/agent/dataplane"
	"vigil.dev/vigil/agent/probe"
	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/membership"
	"vigil.dev/vigil/internal/promutil"
	"vigil.dev/vigil/internal/version"
)

// metrics are the agent's own vigil_agent_* metrics; the probe manager, the announcer and
// memberlist export theirs. A nil *metrics records nothing (tests).
type metrics struct {
	vipsBound    prometheus.Gauge
	bindErrors   prometheus.Counter
	fenced       prometheus.Gauge
	apiReachable prometheus.Gauge
	eligible     *prometheus.GaugeVec
	renewals     prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		vipsBound:    promutil.Gauge("vigil_agent_vips_bound", "VIP addresses bound on this node, including those held quietly while a planned move drains."),
		bindErrors:   promutil.Counter("vigil_agent_bind_errors_total", "Attempts to bind a VIP this node owns that failed (the node then reports itself not eligible, with the error)."),
		fenced:       promutil.Gauge("vigil_agent_fenced", "1 while the agent has released every VIP because it reaches neither the API server nor a majority of its peers."),
		apiReachable: promutil.Gauge("vigil_agent_api_reachable", "1 while the agent's last read of the API server (one a second) succeeded."),
		renewals:     promutil.Histogram("vigil_agent_address_renewal_interval_seconds", "Time between two renewals of the VIP addresses' kernel lifetime (due every --address-lifetime/4; a busy node renews late, and an address lapses when renewals stop for its lifetime).", []float64{0.1, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 5}),
		eligible:     promutil.GaugeVec("vigil_agent_vip_eligible", "1 while this node may hold the VirtualIP (selected, interface found, every check passing), as reported in its NodeAgent.", "virtualip"),
	}
}

// MetricDescriptions describes every vigil_* metric the agent can export, memberlist's,
// the probes' and the announcements' included (docs/operations.md is checked against it).
func MetricDescriptions() []*prometheus.Desc {
	probes := probe.NewManager(probe.Env{NS: netns.None()}, logr.Discard(), func(string, probe.Health) {})
	defer probes.Stop()
	cs := append(newMetrics().collectors(), probes, announce.NewRaw(netns.None()), version.NewCollector())
	return promutil.Describe(append(cs, membership.NewMetrics().Collectors()...)...)
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.vipsBound, m.bindErrors, m.fenced, m.apiReachable, m.eligible, m.renewals}
}

// observeSync records what one sync left bound and which binds failed.
func (m *metrics) observeSync(results map[string]dataplane.Result) {
	if m == nil {
		return
	}
	var bound float64
	for _, r := range results {
		bound += promutil.Bool(r.Bound)
		if r.Err != nil {
			m.bindErrors.Inc()
		}
	}
	m.vipsBound.Set(bound)
}

// observeReports records the node's eligibility per VirtualIP, dropping removed ones.
func (m *metrics) observeReports(reports []vigilv1.VIPEligibility) {
	if m == nil {
		return
	}
	m.eligible.Reset()
	for _, r := range reports {
		m.eligible.WithLabelValues(r.Name).Set(promutil.Bool(r.Eligible))
	}
}

func (m *metrics) observeRenewal(gap time.Duration) {
	if m != nil {
		m.renewals.Observe(gap.Seconds())
	}
}

func (m *metrics) setFenced(f bool) {
	if m != nil {
		m.fenced.Set(promutil.Bool(f))
	}
}

func (m *metrics) setAPIReachable(ok bool) {
	if m != nil {
		m.apiReachable.Set(promutil.Bool(ok))
	}
}
