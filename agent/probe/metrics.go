package probe

import (
	"github.com/prometheus/client_golang/prometheus"

	"vigil.dev/vigil/internal/promutil"
)

var (
	resultDesc = prometheus.NewDesc("vigil_probe_result",
		"Verdict of the health check on this node after fall/rise: 1 passing, 0 failing; no series before the first verdict.", []string{"virtualip", "check"}, nil)
	durationDesc = prometheus.NewDesc("vigil_probe_duration_seconds",
		"How long the check's last probe took (a probe shared by several VirtualIPs reports the same figure for each).", []string{"virtualip", "check"}, nil)
	runsDesc = prometheus.NewDesc("vigil_probe_runs_total",
		"Probes run on this node (a probe shared by several VirtualIPs counts once).", nil, nil)
	failuresDesc = prometheus.NewDesc("vigil_probe_failures_total",
		"Probes that failed on this node.", nil, nil)
	distinctDesc = prometheus.NewDesc("vigil_probe_distinct",
		"Distinct probes running: identical checks of several VirtualIPs share one.", nil, nil)
)

// Describe implements prometheus.Collector: the Manager exports its verdicts and counters
// at scrape time, so nothing is kept twice and a removed check leaves no stale series.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{resultDesc, durationDesc, runsDesc, failuresDesc, distinctDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	runs, failures := m.Stats()
	ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.CounterValue, float64(runs))
	ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, float64(failures))
	m.mu.Lock()
	defer m.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(distinctDesc, prometheus.GaugeValue, float64(len(m.probes)))
	for vip, v := range m.vips {
		for name, c := range v.checks {
			if c.h.State != Unknown {
				ch <- prometheus.MustNewConstMetric(resultDesc, prometheus.GaugeValue, promutil.Bool(c.h.State == Passing), vip, name)
			}
			if sp, ok := m.probes[c.key]; ok && sp.last > 0 {
				ch <- prometheus.MustNewConstMetric(durationDesc, prometheus.GaugeValue, sp.last.Seconds(), vip, name)
			}
		}
	}
}
