// Package promutil holds the small Prometheus helpers both binaries use.
package promutil

import "github.com/prometheus/client_golang/prometheus"

// Bool is a gauge's value for a truth: 1 or 0.
func Bool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Describe returns the descriptions of every metric the collectors export, also of
// labelled metrics that have no series yet.
func Describe(cs ...prometheus.Collector) []*prometheus.Desc {
	ch := make(chan *prometheus.Desc)
	go func() {
		for _, c := range cs {
			c.Describe(ch)
		}
		close(ch)
	}()
	var out []*prometheus.Desc
	for d := range ch {
		out = append(out, d)
	}
	return out
}

// Gauge makes a gauge from its name and help. It and its siblings (GaugeVec, Counter,
// CounterVec, Histogram, HistogramVec) make a package's metric declarations read as a table.
func Gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

// GaugeVec makes a gauge with labels (see Gauge).
func GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

// Counter makes a counter (see Gauge).
func Counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

// CounterVec makes a counter with labels (see Gauge).
func CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// Histogram makes a histogram with its buckets (see Gauge).
func Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
}

// HistogramVec makes a histogram with its buckets and labels (see Gauge).
func HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
}

// Desc describes a metric a collector exports, from its name, help and labels.
func Desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}
