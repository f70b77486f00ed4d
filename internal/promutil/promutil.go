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
