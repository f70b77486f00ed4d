package keepalived

import (
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// Limits of the VirtualIP schema for health checks.
const (
	maxChecks    = 16
	minInterval  = 100 * time.Millisecond
	maxInterval  = time.Hour
	minTimeout   = 10 * time.Millisecond
	maxThreshold = 100
	maxCount     = 1 << 20 // bounds the counts read from keepalived before they are clamped
)

// trackRef is one entry of a track_script block: a vrrp_script name, maybe with a weight.
type trackRef struct {
	name string
	node *Node
}

// vrrpScript is a vrrp_script block, read with keepalived's defaults.
type vrrpScript struct {
	node       *Node
	cmd        *Node
	interval   time.Duration
	timeout    time.Duration // 0: the interval, as in keepalived
	fall, rise int
	weight     *Node
	// at holds where interval, timeout, fall and rise are written, for notes on them.
	at    map[string]*Node
	notes []Note
}

// scriptSettings read the vrrp_script keywords that map; the others become notes.
var scriptSettings = map[string]func(*vrrpScript, *Node){
	"script":   func(s *vrrpScript, n *Node) { s.cmd = n },
	"interval": func(s *vrrpScript, n *Node) { s.interval, s.at["interval"] = s.seconds(n, s.interval), n },
	"timeout":  func(s *vrrpScript, n *Node) { s.timeout, s.at["timeout"] = s.seconds(n, s.timeout), n },
	"fall":     func(s *vrrpScript, n *Node) { s.fall, s.at["fall"] = s.count(n, s.fall), n },
	"rise":     func(s *vrrpScript, n *Node) { s.rise, s.at["rise"] = s.count(n, s.rise), n },
	"weight":   func(s *vrrpScript, n *Node) { s.weight = n },
	"user": func(s *vrrpScript, n *Node) {
		s.note(n, "not needed: Vigil's checks run in the agent, not as a script's user")
	},
	"init_fail": func(s *vrrpScript, n *Node) {
		s.note(n, "not needed: Vigil starts every check as failing until it succeeds, as init_fail did")
	},
}

// readScript reads a vrrp_script block.
func readScript(n *Node) *vrrpScript {
	s := &vrrpScript{node: n, interval: time.Second, fall: 1, rise: 1, at: map[string]*Node{}}
	for _, c := range n.Children {
		if set, ok := scriptSettings[c.Keyword]; ok {
			set(s, c)
		} else {
			s.note(c, reasonFor(c.Keyword))
		}
	}
	return s
}

func (s *vrrpScript) note(n *Node, text string) {
	s.notes = append(s.notes, noteIn("vrrp_script "+firstArg(s.node), n, text))
}

// seconds reads a positive number of seconds, keeping def when keepalived would.
func (s *vrrpScript) seconds(n *Node, def time.Duration) time.Duration {
	d, err := argSeconds(n)
	if err == nil && d == 0 {
		err = fmt.Errorf("0 is not allowed")
	}
	if err != nil {
		s.note(n, fmt.Sprintf("not mapped: %v; keepalived ignores it too", err))
		return def
	}
	return d
}

// count reads fall or rise.
func (s *vrrpScript) count(n *Node, def int) int {
	c, err := argInt(n, 1, maxCount)
	if err != nil {
		s.note(n, fmt.Sprintf("not mapped: %v; keepalived uses 1", err))
		return def
	}
	return c
}

// command is the script's command line: a quoted script is one word that keepalived
// splits itself; an unquoted one is the rest of the line.
func (s *vrrpScript) command() string {
	if len(s.cmd.Args) == 1 {
		return s.cmd.Args[0]
	}
	return s.cmd.Raw
}

// check maps the vrrp_script tracked by ref to a health check; nil when the script cannot
// be mapped, which the notes explain.
func (s *vrrpScript) check(ref trackRef) (*vigilv1.HealthCheck, []Note) {
	name := "vrrp_script " + firstArg(s.node)
	if s.cmd == nil {
		return nil, append(s.notes, noteAt(s.node, "not converted: it has no script, so keepalived drops it"))
	}
	p, err := probeFromCommand(s.command())
	if err != nil {
		return nil, append(s.notes, noteIn(name, s.cmd, fmt.Sprintf(
			"not converted: %v; the address no longer depends on this script", err)))
	}
	notes := s.notes
	if len(p.notes) > 0 {
		notes = append(notes, noteIn(name, s.cmd, strings.Join(p.notes, "; ")))
	}
	c := &vigilv1.HealthCheck{ICMP: p.icmp, TCP: p.tcp, HTTP: p.http}
	timeout := s.timeout
	if timeout == 0 {
		timeout = min(s.interval, maxInterval) // keepalived stops a script after its interval by default
	}
	for _, t := range setTiming(c, s.interval, shorter(timeout, p.timeout), s.fall, s.rise) {
		if at := s.at[t.field]; at != nil {
			notes = append(notes, noteIn(name, at, t.text))
		} else {
			notes = append(notes, Note{Setting: name + " " + t.field, At: []Pos{s.node.Pos}, Text: t.text})
		}
	}
	if w := s.weightNote(ref); w != nil {
		notes = append(notes, *w)
	}
	return c, notes
}

// weightNote explains a non-zero weight, from the track_script entry or the vrrp_script.
func (s *vrrpScript) weightNote(ref trackRef) *Note {
	n := s.weight
	if len(ref.node.Args) >= 2 && ref.node.Args[0] == "weight" {
		n = ref.node
	}
	if n == nil {
		return nil
	}
	args := n.Args
	if n == ref.node {
		args = args[1:]
	}
	w, err := parseInt(firstOf(args), -254, 254)
	var text string
	reverse := ""
	if len(args) > 1 && args[1] == "reverse" {
		reverse = " (reverse turns that around; Vigil has no equivalent)"
	}
	switch {
	case err != nil:
		text = fmt.Sprintf("not mapped: %v", err)
	case w < 0:
		text = fmt.Sprintf("keepalived lowered the priority by %d while the script failed, and the node stayed in the election; "+
			"in Vigil a failing check makes the node ineligible, which moves the address away as the weight meant to%s", -w, reverse)
	case w > 0:
		text = fmt.Sprintf("keepalived raised the priority by %d while the script succeeded; "+
			"in Vigil priorities are fixed and a failing check makes the node ineligible%s", w, reverse)
	default:
		return nil
	}
	note := noteIn("vrrp_script "+firstArg(s.node), n, text)
	if n == ref.node {
		note = noteIn("track_script", n, text)
	}
	return &note
}

func firstOf(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// timingNote says how setTiming changed one of "interval", "timeout", "fall" and "rise".
type timingNote struct{ field, text string }

// setTiming sets a check's interval, timeout and thresholds within the schema's limits and
// says what it had to change.
func setTiming(c *vigilv1.HealthCheck, interval, timeout time.Duration, fall, rise int) []timingNote {
	var notes []timingNote
	iv, changed := clampDuration(interval, minInterval, maxInterval)
	if changed {
		notes = append(notes, timingNote{"interval", fmt.Sprintf("Vigil's interval is 100ms..1h: using %s", iv)})
	}
	to, changed := clampDuration(timeout, minTimeout, iv)
	if changed {
		notes = append(notes, timingNote{"timeout", fmt.Sprintf("Vigil's timeout is at least 10ms and at most the interval: using %s", to)})
	}
	c.Interval = metav1.Duration{Duration: iv}
	c.Timeout = &metav1.Duration{Duration: to}
	c.FailureThreshold = threshold(fall)
	c.SuccessThreshold = threshold(rise)
	for field, n := range map[string]int{"fall": fall, "rise": rise} {
		if n > maxThreshold {
			notes = append(notes, timingNote{field, fmt.Sprintf("Vigil counts at most %d in a row: using %d", maxThreshold, maxThreshold)})
		}
	}
	sort.Slice(notes, func(i, j int) bool { return fieldOrder(notes[i].field) < fieldOrder(notes[j].field) })
	return notes
}

// fieldOrder keeps timing notes in the order of the fields.
func fieldOrder(field string) int {
	return strings.Index("interval timeout fall rise", field)
}

// threshold bounds a fall or rise count to the schema's 1..100.
func threshold(n int) int32 {
	return int32(min(max(n, 1), maxThreshold))
}

// addCheck appends a check to a spec under a name unique in it, within the schema's limit.
func addCheck(spec *vigilv1.VirtualIPSpec, c vigilv1.HealthCheck, base string) error {
	if len(spec.HealthChecks) >= maxChecks {
		return fmt.Errorf("not converted: a VirtualIP takes at most %d health checks", maxChecks)
	}
	names := newNamer()
	for _, existing := range spec.HealthChecks {
		names.used[existing.Name] = true
	}
	c.Name = names.unique(label(base, "check"), 0)
	spec.HealthChecks = append(spec.HealthChecks, c)
	return nil
}

// checks maps the instance's tracked scripts to health checks.
func (h *host) checks(in *instance) []vigilv1.HealthCheck {
	var spec vigilv1.VirtualIPSpec
	for _, ref := range in.tracks {
		n, ok := h.scripts[ref.name]
		if !ok {
			in.notes = append(in.notes, noteIn("track_script", ref.node, "not converted: there is no vrrp_script "+ref.name+" in this file"))
			continue
		}
		h.tracked[ref.name] = true
		c, notes := readScript(n).check(ref)
		in.notes = append(in.notes, notes...)
		if c == nil {
			continue
		}
		if err := addCheck(&spec, *c, ref.name); err != nil {
			in.note(ref.node, err.Error())
		}
	}
	return spec.HealthChecks
}
