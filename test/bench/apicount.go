package bench

import (
	"time"

	"vigil.dev/vigil/test/lab"
)

// APICounts are Vigil's requests to the API server in a window, from the audit log
// (lab.Config.AuditLog records the requests of Vigil's ServiceAccounts only).
type APICounts struct {
	From, To time.Time
	Total    int
	Writes   int
	// ByWhat counts the requests by verb and resource ("patch nodeagents/status").
	ByWhat map[string]int
	// PeakSecond is the most requests received in one second of the window (seconds
	// counted from From).
	PeakSecond int
}

// writeVerbs are the verbs that change something.
var writeVerbs = map[string]bool{"create": true, "update": true, "patch": true, "delete": true, "deletecollection": true}

// IsWrite reports whether an audit verb changes something.
func IsWrite(verb string) bool { return writeVerbs[verb] }

// CountAPI counts the requests received in [from, to). Pure.
func CountAPI(events []lab.AuditEvent, from, to time.Time) APICounts {
	c := APICounts{From: from, To: to, ByWhat: map[string]int{}}
	perSecond := map[int64]int{}
	for i := range events {
		e := &events[i]
		at := e.RequestReceived
		if at.Before(from) || !at.Before(to) {
			continue
		}
		c.Total++
		if IsWrite(e.Verb) {
			c.Writes++
		}
		c.ByWhat[e.Verb+" "+e.Resource()]++
		s := int64(at.Sub(from) / time.Second)
		perSecond[s]++
		c.PeakSecond = max(c.PeakSecond, perSecond[s])
	}
	return c
}

// PerMinute is n events in the window, per minute.
func (c APICounts) PerMinute(n int) float64 {
	if m := c.To.Sub(c.From).Minutes(); m > 0 {
		return round1(float64(n) / m)
	}
	return 0
}

// PerSecond is n events in the window, per second.
func (c APICounts) PerSecond(n int) float64 {
	if s := c.To.Sub(c.From).Seconds(); s > 0 {
		return round1(float64(n) / s)
	}
	return 0
}

// WritesPerMinute are the window's writes by verb and resource, per minute.
func (c APICounts) WritesPerMinute() map[string]float64 {
	out := map[string]float64{}
	for what, n := range c.ByWhat {
		verb := what
		for i := range what {
			if what[i] == ' ' {
				verb = what[:i]
				break
			}
		}
		if IsWrite(verb) {
			out[what] = c.PerMinute(n)
		}
	}
	return out
}
