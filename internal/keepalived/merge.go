package keepalived

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// hostnameLabel is the node label the priorities select on.
const hostnameLabel = "kubernetes.io/hostname"

// maxPriorities is the schema's limit on priority rules.
const maxPriorities = 32

// merge turns the candidates of all hosts into one VirtualIP per address, in the order the
// addresses first appear, named after their instances.
func merge(cands []candidate) []Converted {
	var order []netip.Addr
	byAddr := map[netip.Addr][]candidate{}
	for _, c := range cands {
		if _, seen := byAddr[c.addr]; !seen {
			order = append(order, c.addr)
		}
		byAddr[c.addr] = append(byAddr[c.addr], c)
	}
	perInstance := map[string]int{}
	for _, a := range order {
		perInstance[label(byAddr[a][0].instance, "vip")]++
	}
	names := newNamer()
	out := make([]Converted, 0, len(order))
	for _, a := range order {
		group := byAddr[a]
		base := label(group[0].instance, "vip")
		first := 0
		if perInstance[base] > 1 {
			first = 1 // several addresses: vi-1-1, vi-1-2, ...
		}
		out = append(out, build(names.unique(base, first), group))
	}
	return out
}

// build makes the VirtualIP of one address from its candidates, one per host (or more when
// a host names the address twice). The host with the highest priority sets the spec: its
// nopreempt decides whether keepalived preempted.
func build(name string, group []candidate) Converted {
	primary := group[0]
	for _, c := range group[1:] {
		if c.priority > primary.priority {
			primary = c
		}
	}
	spec := primary.spec.DeepCopy()
	var notes []Note
	for _, c := range group {
		notes = append(notes, c.notes...)
	}
	notes = append(notes, duplicates(group)...)
	notes = append(notes, differences(spec, primary, group)...)
	var ruleNotes []Note
	spec.Priorities, ruleNotes = priorities(group)
	notes = append(notes, ruleNotes...)
	if sel, note := selector(group); sel != nil {
		spec.NodeSelector = sel
		notes = append(notes, note)
	}
	return Converted{
		Object: vigilv1.VirtualIP{
			TypeMeta:   metav1.TypeMeta{APIVersion: vigilv1.GroupVersion.String(), Kind: "VirtualIP"},
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       *spec,
		},
		From:  origin(group),
		Notes: mergeNotes(notes),
	}
}

// origin says where an address comes from: its instances and the address as written.
func origin(group []candidate) string {
	var at []Pos
	for _, c := range group {
		at = append(at, c.from)
	}
	return fmt.Sprintf("vrrp_instance %s (%s): %s", group[0].instance, positions(at), group[0].written)
}

// differences notes where the hosts configure an address differently from primary. An
// interface that differs is left out, so that each node finds its own by subnet.
func differences(spec *vigilv1.VirtualIPSpec, primary candidate, group []candidate) []Note {
	var notes []Note
	want := specFields(primary.spec)
	for _, c := range group {
		if c.from == primary.from {
			continue
		}
		got := specFields(c.spec)
		for _, field := range sortedKeys(want, got) {
			text := fmt.Sprintf("%s; this VirtualIP follows %s, the host with the highest priority",
				fieldDifference(field, got[field], want[field], where(primary)), where(primary))
			if field == "interface" {
				spec.Interface = ""
				text = "the hosts bind the address on different interfaces; interface is left out, so that each node uses the one whose subnet holds the address"
			}
			notes = append(notes, Note{Setting: "spec." + field + " on " + where(c), At: []Pos{c.from}, Text: text})
		}
	}
	return notes
}

// duplicates notes an address that one host has in more than one place: keepalived would
// have two instances fight over it, while Vigil makes one VirtualIP of it.
func duplicates(group []candidate) []Note {
	var notes []Note
	seen := map[string]candidate{}
	for _, c := range group {
		host := c.node + "\x00" + c.from.File
		if first, ok := seen[host]; ok {
			notes = append(notes, Note{Setting: "vrrp_instance " + c.instance + ": " + c.written, At: []Pos{c.from},
				Text: fmt.Sprintf("the address is also in vrrp_instance %s (%s); this VirtualIP follows the first", first.instance, first.from)})
			continue
		}
		seen[host] = c
	}
	return notes
}

// where names a candidate's host for notes.
func where(c candidate) string {
	if c.node != "" {
		return c.node
	}
	return c.from.File
}

// maxListedDifferences keeps a note on differences short.
const maxListedDifferences = 4

// fieldDifference says how a field's JSON value got differs from want, which primary has:
// "healthChecks[web].interval is 2s (node-a: 1s)".
func fieldDifference(field, got, want, primary string) string {
	g, w := map[string]string{}, map[string]string{}
	flatten(field, json.RawMessage(got), g)
	flatten(field, json.RawMessage(want), w)
	var parts []string
	for _, path := range sortedKeys(g, w) {
		if len(parts) == maxListedDifferences {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprintf("%s is %s (%s: %s)", path, orNone(g[path]), primary, orNone(w[path])))
	}
	return strings.Join(parts, "; ")
}

func orNone(v string) string {
	if v == "" {
		return "unset"
	}
	return v
}

// flatten lists the scalars of a JSON value by path; list items are named by their "name"
// field when they have one (health checks), by index otherwise.
func flatten(path string, raw json.RawMessage, out map[string]string) {
	var obj map[string]json.RawMessage
	var list []json.RawMessage
	switch {
	case len(raw) == 0:
	case json.Unmarshal(raw, &obj) == nil:
		for k, v := range obj {
			flatten(path+"."+k, v, out)
		}
	case json.Unmarshal(raw, &list) == nil:
		for i, v := range list {
			var item struct{ Name string }
			key := fmt.Sprint(i)
			if json.Unmarshal(v, &item) == nil && item.Name != "" {
				key = item.Name
			}
			flatten(path+"["+key+"]", v, out)
		}
	default:
		out[path] = strings.Trim(string(raw), `"`)
	}
}

// specFields encodes the compared fields of a spec, by JSON name.
func specFields(s vigilv1.VirtualIPSpec) map[string]string {
	s.Priorities, s.NodeSelector = nil, nil
	raw, _ := json.Marshal(s) // a VirtualIPSpec always encodes
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields)
	out := map[string]string{}
	for k, v := range fields {
		out[k] = string(v)
	}
	return out
}

// sortedKeys are the keys whose values differ between a and b, sorted.
func sortedKeys(a, b map[string]string) []string {
	var keys []string
	for k := range a {
		if a[k] != b[k] {
			keys = append(keys, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// priorities gives each named host its keepalived priority.
func priorities(group []candidate) ([]vigilv1.PriorityRule, []Note) {
	var rules []vigilv1.PriorityRule
	var notes []Note
	seen := map[string]bool{}
	for _, c := range group {
		switch {
		case c.node == "":
		case seen[c.node]:
			notes = append(notes, Note{Setting: "priority on " + c.node, At: []Pos{c.from},
				Text: "not mapped: the address appears twice for this node; the first priority is used"})
		case len(rules) == maxPriorities:
			notes = append(notes, Note{Setting: "priority on " + c.node, At: []Pos{c.from},
				Text: fmt.Sprintf("not mapped: a VirtualIP takes at most %d priorities", maxPriorities)})
		default:
			seen[c.node] = true
			rules = append(rules, vigilv1.PriorityRule{
				NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{hostnameLabel: c.node}},
				Priority:     c.priority,
			})
		}
	}
	return rules, notes
}

// selector limits the address to the hosts that had it, when every one of them is named
// and there are at least two: a single named host would leave no node to fail over to.
func selector(group []candidate) (*metav1.LabelSelector, Note) {
	var nodes []string
	for _, c := range group {
		if c.node == "" {
			return nil, Note{}
		}
		if !slices.Contains(nodes, c.node) {
			nodes = append(nodes, c.node)
		}
	}
	if len(nodes) < 2 {
		return nil, Note{}
	}
	sel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: hostnameLabel, Operator: metav1.LabelSelectorOpIn, Values: nodes},
	}}
	return sel, Note{Setting: "keepalived ran on " + strings.Join(nodes, ", "),
		Text: "nodeSelector keeps the address on these nodes, as before; remove it to let any node with a matching interface hold it"}
}

// mergeNotes joins the notes on the same setting with the same text (the same line on
// several hosts), keeping the order in which they first appear.
func mergeNotes(notes []Note) []Note {
	var out []Note
	index := map[string]int{}
	seen := map[string]map[Pos]bool{}
	for _, n := range notes {
		key := n.Setting + "\x00" + n.Text
		i, ok := index[key]
		if !ok {
			index[key], seen[key] = len(out), map[Pos]bool{}
			out = append(out, Note{Setting: n.Setting, Text: n.Text})
			i = len(out) - 1
		}
		for _, p := range n.At {
			if !seen[key][p] {
				seen[key][p] = true
				out[i].At = append(out[i].At, p)
			}
		}
	}
	return out
}

// positions writes positions compactly: "a.conf:3, 9, b.conf:4".
func positions(at []Pos) string {
	var parts []string
	file := ""
	seen := map[Pos]bool{}
	for _, p := range at {
		if seen[p] {
			continue
		}
		seen[p] = true
		if p.File == file {
			parts = append(parts, fmt.Sprint(p.Line))
			continue
		}
		file = p.File
		parts = append(parts, p.String())
	}
	return strings.Join(parts, ", ")
}
