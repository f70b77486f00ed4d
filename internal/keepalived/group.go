package keepalived

import (
	"fmt"
	"strings"
)

// syncGroup is what a vrrp_sync_group gives each of its instances: its tracked scripts,
// which keepalived applies to every member, and notes.
type syncGroup struct {
	tracks []trackRef
	notes  []Note
}

// syncGroup reads a vrrp_sync_group for the instances it names.
func (h *host) syncGroup(n *Node) {
	var members []string
	var g syncGroup
	name := "vrrp_sync_group " + firstArg(n)
	for _, c := range n.Children {
		switch c.Keyword {
		case "group":
			for _, m := range c.Children {
				members = append(members, m.Keyword)
				members = append(members, m.Args...)
			}
		case "track_script":
			for _, t := range c.Children {
				g.tracks = append(g.tracks, trackRef{name: t.Keyword, node: t})
			}
		default:
			g.notes = append(g.notes, noteIn(name, c, reasonFor(c.Keyword)))
		}
	}
	if len(members) == 0 {
		h.notes = append(h.notes, noteAt(n, "not converted: it names no instances"))
		return
	}
	g.notes = append([]Note{noteAt(n, fmt.Sprintf("not mapped: Vigil moves each VirtualIP on its own, so the addresses of %s "+
		"may be held by different nodes; give them the same priorities and checks so that they usually stay together",
		strings.Join(members, ", ")))}, g.notes...)
	for _, m := range members {
		h.groups[m] = append(h.groups[m], g)
	}
}
