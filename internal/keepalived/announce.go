package keepalived

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// Limits of the VirtualIP schema for announcements.
const (
	maxAnnounceCount    = 100
	minAnnounceInterval = 10 * time.Millisecond
	maxAnnounceInterval = 10 * time.Second
	minRefresh          = time.Second
	maxRefresh          = 24 * time.Hour
)

// garp holds the gratuitous ARP / neighbour advertisement settings of an instance, which
// start as global_defs' defaults.
type garp struct {
	repeat, delay, refresh, refreshRepeat *Node
	interval, gnaInterval                 *Node
	lowerPrioDelay, lowerPrioRepeat       *Node
	// global marks the settings from global_defs, defaults that need not apply everywhere.
	global map[*Node]bool
}

// set records n if it is a garp setting; global is for global_defs, whose keywords start
// with "vrrp_".
func (g *garp) set(n *Node, global bool) bool {
	k := n.Keyword
	if global {
		var ok bool
		if k, ok = strings.CutPrefix(k, "vrrp_"); !ok {
			return false
		}
	}
	fields := map[string]**Node{
		"garp_master_repeat": &g.repeat, "garp_master_delay": &g.delay,
		"garp_master_refresh": &g.refresh, "garp_master_refresh_repeat": &g.refreshRepeat,
		"garp_interval": &g.interval, "gna_interval": &g.gnaInterval,
		"garp_lower_prio_delay": &g.lowerPrioDelay, "garp_lower_prio_repeat": &g.lowerPrioRepeat,
	}
	field, ok := fields[k]
	if !ok {
		return false
	}
	*field = n
	if global {
		if g.global == nil {
			g.global = map[*Node]bool{}
		}
		g.global[n] = true
	}
	return true
}

// announce maps the settings to the announce of an IPv4 or IPv6 address.
func (g garp) announce(v6 bool) (vigilv1.Announce, []Note) {
	var a vigilv1.Announce
	var notes []Note
	note := func(n *Node, text string) { notes = append(notes, noteAt(n, text)) }
	if g.repeat != nil {
		a.Count = g.count(note)
	}
	interval, other := g.interval, g.gnaInterval
	if v6 {
		interval, other = other, interval
	}
	if interval != nil {
		a.Interval = metav1.Duration{Duration: burstInterval(interval, note)}
	}
	if other != nil && !g.global[other] {
		note(other, "not needed: it applies to the other address family")
	}
	if g.refresh != nil {
		a.RefreshInterval = metav1.Duration{Duration: refreshInterval(g.refresh, note)}
	}
	g.unmapped(note)
	return a, notes
}

// count maps garp_master_repeat: the size of the burst sent on taking the address.
func (g garp) count(note func(*Node, string)) int32 {
	n, err := argInt(g.repeat, 0, maxCount)
	switch {
	case err != nil:
		note(g.repeat, fmt.Sprintf("not mapped: %v", err))
		return 0
	case n == 0:
		note(g.repeat, "keepalived sent no gratuitous ARP; Vigil always announces at least once")
		return 1
	case n > maxAnnounceCount:
		note(g.repeat, fmt.Sprintf("Vigil sends at most %d announcements in a burst", maxAnnounceCount))
		return maxAnnounceCount
	}
	return int32(n)
}

// burstInterval maps garp_interval or gna_interval: the gap between the announcements of
// a burst.
func burstInterval(n *Node, note func(*Node, string)) time.Duration {
	d, err := argSeconds(n)
	if err != nil {
		note(n, fmt.Sprintf("not mapped: %v", err))
		return 0
	}
	clamped, changed := clampDuration(d, minAnnounceInterval, maxAnnounceInterval)
	if changed {
		note(n, fmt.Sprintf("Vigil spaces announcements 10ms to 10s apart: using %s", clamped))
	}
	return clamped
}

// refreshInterval maps garp_master_refresh: periodic announcements while holding the
// address, 0 for none.
func refreshInterval(n *Node, note func(*Node, string)) time.Duration {
	d, err := argSeconds(n)
	if err != nil {
		note(n, fmt.Sprintf("not mapped: %v", err))
		return 0
	}
	if d == 0 {
		return 0
	}
	clamped, changed := clampDuration(d, minRefresh, maxRefresh)
	if changed {
		note(n, fmt.Sprintf("Vigil refreshes every 1s to 24h: using %s", clamped))
	}
	return clamped
}

// unmapped notes the garp settings without a Vigil field.
func (g garp) unmapped(note func(*Node, string)) {
	if g.delay != nil {
		note(g.delay, "not mapped: keepalived sent a second burst this long after taking the address; "+
			"Vigil sends one burst (refreshInterval repeats announcements periodically)")
	}
	if g.refreshRepeat != nil && firstArg(g.refreshRepeat) != "1" {
		note(g.refreshRepeat, "not mapped: Vigil sends one announcement per refresh")
	}
	for _, n := range []*Node{g.lowerPrioDelay, g.lowerPrioRepeat} {
		if n != nil {
			note(n, "not needed: Vigil does not speak VRRP, so no lower-priority advert triggers announcements")
		}
	}
}
