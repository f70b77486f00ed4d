package keepalived

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// addressFlags are the virtual_ipaddress options without a value, and why they do not map.
var addressFlags = map[string]string{
	"home":          "not mapped: Vigil binds plain addresses",
	"-nodad":        "not needed: Vigil adds IPv6 addresses with nodad",
	"nodad":         "not needed: Vigil adds IPv6 addresses with nodad",
	"noprefixroute": "not mapped: the kernel adds the prefix route as usual when Vigil binds the address",
	"autojoin":      "not mapped: Vigil binds unicast addresses only",
	"no_track":      whyVRRP,
}

// addressOptions are the virtual_ipaddress options with a value that do not map.
var addressOptions = map[string]string{
	"brd":           "not mapped: Vigil binds the address with its prefix length; the kernel derives the broadcast address",
	"label":         "not mapped: Vigil binds the address without a label",
	"peer":          "not mapped: Vigil binds plain addresses, not point-to-point ones",
	"track_group":   whyVRRP,
	"preferred_lft": "not mapped: Vigil sets the lifetimes itself (IPv6 addresses deprecated, so that they are never a source address)",
}

// addressEntry is one line of a virtual_ipaddress block.
type addressEntry struct {
	addr   netip.Addr
	prefix *int32
	dev    string
	notes  []Note
}

// readAddress reads "ADDRESS[/PREFIX] [dev IFACE] [scope SCOPE] [label ...] ...". The
// error says why the address cannot be a VirtualIP.
func readAddress(n *Node) (addressEntry, error) {
	var e addressEntry
	ip, bits, hasBits := strings.Cut(n.Keyword, "/")
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return e, fmt.Errorf("%q is not an IP address", ip)
	}
	if err := vipAddress(addr); err != nil {
		return e, err
	}
	e.addr = addr
	if hasBits {
		e.setPrefix(n, bits)
	}
	for i := 0; i < len(n.Args); i++ {
		opt := n.Args[i]
		if text, ok := addressFlags[opt]; ok {
			e.note(n, opt, text)
			continue
		}
		if i+1 == len(n.Args) {
			e.note(n, opt, "not mapped: no value given")
			continue
		}
		i++
		e.option(n, opt, n.Args[i])
	}
	return e, nil
}

// note notes an option of the entry; option "" is about the address itself.
func (e *addressEntry) note(n *Node, option, text string) {
	setting := n.Keyword
	if option != "" {
		setting += " " + option
	}
	e.notes = append(e.notes, Note{Setting: setting, At: []Pos{n.Pos}, Text: text})
}

// setPrefix reads "/PREFIX"; keepalived's default without one, a host prefix, is Vigil's.
func (e *addressEntry) setPrefix(n *Node, bits string) {
	hi := 32
	if e.addr.Is6() {
		hi = 128
	}
	p, err := parseInt(bits, 1, hi)
	if err != nil {
		e.note(n, "", fmt.Sprintf("not mapped: the prefix length must be 1..%d; the default /%d applies", hi, hi))
		return
	}
	prefix := int32(p)
	e.prefix = &prefix
}

// option reads one option with its value.
func (e *addressEntry) option(n *Node, opt, value string) {
	switch opt {
	case "dev":
		if err := interfaceName(value); err != nil {
			e.note(n, "dev "+value, fmt.Sprintf("not mapped: %v", err))
			return
		}
		e.dev = value
	case "scope":
		if value != "global" {
			e.note(n, "scope "+value, "not mapped: Vigil binds addresses with scope global")
		}
	default:
		text, ok := addressOptions[opt]
		if !ok {
			text = whyUnknown
		}
		e.note(n, opt+" "+value, text)
	}
}

// candidate makes the candidate of one virtual_ipaddress entry of an instance.
func (h *host) candidate(in *instance, n *Node, base vigilv1.VirtualIPSpec) (candidate, bool) {
	e, err := readAddress(n)
	if err != nil {
		h.notes = append(h.notes, noteIn("vrrp_instance "+in.name, n, "not converted: "+err.Error()))
		return candidate{}, false
	}
	spec := *base.DeepCopy()
	spec.Address = e.addr.String()
	spec.PrefixLength = e.prefix
	notes := slices.Concat(in.notes, e.notes)
	spec.Interface = e.dev
	if spec.Interface == "" && in.iface != "" {
		if err := interfaceName(in.iface); err != nil {
			notes = append(notes, Note{Setting: "interface " + in.iface, At: []Pos{in.node.Pos}, Text: fmt.Sprintf("not mapped: %v", err)})
		} else {
			spec.Interface = in.iface // keepalived binds an address without dev on the instance's interface
		}
	} else if in.iface != "" && in.iface != e.dev {
		notes = append(notes, Note{Setting: "interface " + in.iface, At: []Pos{in.node.Pos},
			Text: "not needed: it carried keepalived's VRRP adverts; the address is bound on its dev " + e.dev})
	}
	var announceNotes []Note
	spec.Announce, announceNotes = in.garp.announce(e.addr.Is6())
	notes = append(notes, announceNotes...)
	notes = append(notes, in.trackedInterfaces(spec.Interface)...)
	if in.excluded[n] {
		notes = append(notes, noteAt(n, "from virtual_ipaddress_excluded: the same as any address for Vigil, which sends no VRRP adverts"))
	}
	if h.node == "" {
		notes = append(notes, Note{Setting: fmt.Sprintf("priority %d", in.priority), At: []Pos{in.node.Pos},
			Text: "no priorities entry: the file's node is not known (give --node NAME before the file)"})
	}
	return candidate{addr: e.addr, instance: in.name, from: in.node.Pos, written: n.Keyword, node: h.node,
		priority: in.priority, spec: spec, notes: notes}, true
}

// trackedInterfaces explains track_interface for an address bound on iface.
func (in *instance) trackedInterfaces(iface string) []Note {
	var notes []Note
	for _, c := range in.trackIfaces {
		text := "not mapped: Vigil watches only the interface the address is bound on"
		if c.Keyword == iface {
			text = "not needed: a node on which this interface is missing or down is not eligible"
		}
		notes = append(notes, noteIn("track_interface", c, text))
	}
	return notes
}
