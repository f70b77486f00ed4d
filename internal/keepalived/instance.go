package keepalived

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// keepalivedDefaultPriority is a vrrp_instance's priority when none is written; it is also
// Vigil's default priority.
const keepalivedDefaultPriority = 100

// instance collects the settings of one vrrp_instance.
type instance struct {
	node         *Node
	name         string
	iface        string
	state        string
	priority     int32
	nopreempt    *Node
	preemptDelay *Node
	delay        time.Duration
	addrs        []*Node
	excluded     map[*Node]bool
	tracks       []trackRef
	trackIfaces  []*Node
	garp         garp
	notes        []Note
}

// instanceSettings read the vrrp_instance keywords that map to something; every other
// keyword becomes a note.
var instanceSettings = map[string]func(*instance, *Node){
	"state":                      (*instance).setState,
	"interface":                  func(in *instance, n *Node) { in.iface = firstArg(n) },
	"priority":                   (*instance).setPriority,
	"nopreempt":                  func(in *instance, n *Node) { in.nopreempt = n },
	"preempt_delay":              (*instance).setPreemptDelay,
	"preempt":                    func(in *instance, n *Node) { in.note(n, "keepalived's default: see preemption") },
	"virtual_ipaddress":          (*instance).addAddresses,
	"virtual_ipaddress_excluded": (*instance).addExcluded,
	"track_script":               (*instance).addTracks,
	"track_interface":            func(in *instance, n *Node) { in.trackIfaces = append(in.trackIfaces, n.Children...) },
}

// instance converts a vrrp_instance into one candidate per virtual address.
func (h *host) instance(n *Node) {
	in := &instance{node: n, name: firstArg(n), priority: keepalivedDefaultPriority, garp: h.garp, excluded: map[*Node]bool{}}
	for _, c := range n.Children {
		if set, ok := instanceSettings[c.Keyword]; ok {
			set(in, c)
		} else if !in.garp.set(c, false) {
			in.note(c, reasonFor(c.Keyword))
		}
	}
	for _, g := range h.groups[in.name] {
		in.tracks = append(in.tracks, g.tracks...)
		in.notes = append(in.notes, g.notes...)
	}
	if len(in.addrs) == 0 {
		h.notes = append(h.notes, noteAt(n, "not converted: it has no virtual_ipaddress"))
		return
	}
	base := vigilv1.VirtualIPSpec{}
	base.Preemption, base.PreemptionDelay = in.preemption()
	base.HealthChecks = h.checks(in)
	for _, a := range in.addrs {
		if c, ok := h.candidate(in, a, base); ok {
			h.cands = append(h.cands, c)
		}
	}
}

func (in *instance) note(n *Node, text string) { in.notes = append(in.notes, noteAt(n, text)) }

func (in *instance) setState(n *Node) {
	in.state = strings.ToUpper(firstArg(n))
	in.note(n, reasonFor("state"))
}

func (in *instance) setPriority(n *Node) {
	p, err := argInt(n, 1, 255)
	if err != nil {
		in.note(n, fmt.Sprintf("not mapped: %v; keepalived does not accept it and uses %d", err, keepalivedDefaultPriority))
		return
	}
	in.priority = int32(p)
}

func (in *instance) setPreemptDelay(n *Node) {
	d, err := argSeconds(n)
	if err != nil || d > 24*time.Hour {
		in.note(n, fmt.Sprintf("not mapped: not a number of seconds up to 24h (%s)", firstArg(n)))
		return
	}
	in.preemptDelay, in.delay = n, d
}

func (in *instance) addAddresses(n *Node) {
	if !n.Block {
		in.note(n, "not converted: keepalived reads addresses from a { } block only")
	}
	in.addrs = append(in.addrs, n.Children...)
}

func (in *instance) addExcluded(n *Node) {
	for _, c := range n.Children {
		in.excluded[c] = true
	}
	in.addAddresses(n)
}

func (in *instance) addTracks(n *Node) {
	for _, c := range n.Children {
		in.tracks = append(in.tracks, trackRef{name: c.Keyword, node: c})
	}
}

// preemption maps nopreempt and preempt_delay the way keepalived applies them: state
// MASTER (and priority 255 for nopreempt) cancels both, and nopreempt cancels the delay.
// keepalived's default is to preempt at once, so that is preemption: Always with 0s.
func (in *instance) preemption() (vigilv1.Preemption, *metav1.Duration) {
	master := in.state == "MASTER"
	nopreempt := in.nopreempt != nil
	if nopreempt && (master || in.priority == 255) {
		in.note(in.nopreempt, "keepalived ignores nopreempt with state MASTER or priority 255 and preempts, so this is preemption: Always")
		nopreempt = false
	}
	if nopreempt {
		if in.preemptDelay != nil {
			in.note(in.preemptDelay, "keepalived ignores preempt_delay with nopreempt")
		}
		return vigilv1.PreemptionNever, nil
	}
	if in.preemptDelay != nil && master {
		in.note(in.preemptDelay, "keepalived ignores preempt_delay with state MASTER, so the delay is 0s")
	} else if in.preemptDelay != nil {
		in.note(in.preemptDelay, "mapped to preemptionDelay: keepalived waited this long after its own start "+
			"before preempting; Vigil waits until the higher-priority node has been eligible this long")
		return vigilv1.PreemptionAlways, &metav1.Duration{Duration: in.delay}
	}
	if in.nopreempt == nil {
		in.notes = append(in.notes, Note{Setting: "preemption (keepalived's default, no nopreempt)", At: []Pos{in.node.Pos},
			Text: "keepalived preempts by default: a host with a higher priority takes the address back as soon as it is up, " +
				"hence preemption: Always with preemptionDelay 0s. Vigil's own default, Never, saves that second move"})
	}
	return vigilv1.PreemptionAlways, &metav1.Duration{}
}
