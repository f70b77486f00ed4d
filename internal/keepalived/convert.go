package keepalived

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// Source is one keepalived.conf and the node it configures.
type Source struct {
	// Node is the node's kubernetes.io/hostname label (usually its name); "" when unknown,
	// and then the file's priorities can only be noted.
	Node   string
	Config *Config
}

// Note is a keepalived setting that Vigil does not take as it is, and why.
type Note struct {
	// Setting is the setting as written, e.g. "advert_int 1".
	Setting string
	At      []Pos
	// Text says what Vigil does instead, or how the mapping differs.
	Text string
}

// Converted is one VirtualIP and the notes about the keepalived settings it comes from.
type Converted struct {
	Object vigilv1.VirtualIP
	// From says where the address comes from, e.g. "vrrp_instance VI_1 (a.conf:10)".
	From  string
	Notes []Note
}

// Result is the conversion of a set of keepalived.conf files.
type Result struct {
	Sources []Source
	// Notes are about the files as a whole: global_defs, includes, scripts nobody tracks,
	// addresses that cannot be VirtualIPs.
	Notes      []Note
	VirtualIPs []Converted
}

// Convert maps keepalived configurations to VirtualIPs, one per virtual address. Each
// source is one host's configuration; an address configured on several hosts becomes one
// VirtualIP whose priorities rank those hosts. The only error is a node name that cannot be
// a label value.
func Convert(sources []Source) (Result, error) {
	res := Result{Sources: sources}
	var cands []candidate
	for _, src := range sources {
		if err := CheckNodeName(src.Node); err != nil {
			return Result{}, err
		}
		h := readHost(src)
		res.Notes = append(res.Notes, h.notes...)
		cands = append(cands, h.cands...)
	}
	res.VirtualIPs = merge(cands)
	res.Notes = mergeNotes(res.Notes)
	return res, nil
}

// CheckNodeName accepts "" (unknown) and names that can be the value of the
// kubernetes.io/hostname label.
func CheckNodeName(name string) error {
	if name == "" {
		return nil
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 || len(name) > validation.LabelValueMaxLength {
		return fmt.Errorf("node name %q: want a node's kubernetes.io/hostname label: lower case letters, digits, '-' and '.', at most 63 characters", name)
	}
	return nil
}

// candidate is one address of one host, before the hosts are merged.
type candidate struct {
	addr     netip.Addr
	instance string
	from     Pos // the vrrp_instance
	written  string
	node     string
	priority int32
	spec     vigilv1.VirtualIPSpec // without priorities and nodeSelector: those come from merging
	notes    []Note
}

// host reads one source.
type host struct {
	node    string
	scripts map[string]*Node
	tracked map[string]bool
	garp    garp // global_defs' defaults for every instance
	groups  map[string][]syncGroup
	notes   []Note
	cands   []candidate
}

// readHost converts one host's configuration into candidates and file-wide notes.
func readHost(src Source) *host {
	h := &host{node: src.Node, scripts: map[string]*Node{}, tracked: map[string]bool{}, groups: map[string][]syncGroup{}}
	var nodes []*Node
	if src.Config != nil {
		nodes = h.applicable(src.Config.Nodes)
	}
	for _, n := range nodes { // definitions first: keepalived resolves names after reading
		switch n.Keyword {
		case "vrrp_script":
			h.scripts[firstArg(n)] = n
		case "global_defs":
			h.globalDefs(n)
		case "vrrp_sync_group":
			h.syncGroup(n)
		}
	}
	var servers []*Node
	for _, n := range nodes {
		switch n.Keyword {
		case "vrrp_instance":
			h.instance(n)
		case "virtual_server":
			servers = append(servers, n)
		case "vrrp_script", "global_defs", "vrrp_sync_group":
		default:
			h.notes = append(h.notes, noteAt(n, reasonFor(n.Keyword)))
		}
	}
	for _, n := range servers {
		h.virtualServer(n)
	}
	h.untrackedScripts(nodes)
	return h
}

// applicable drops the "@id" lines keepalived would not read on this host. Without a node
// name that cannot be decided, so those lines are dropped with a note.
func (h *host) applicable(nodes []*Node) []*Node {
	var kept []*Node
	for _, n := range nodes {
		if n.Host != "" && !h.reads(n) {
			continue
		}
		if len(n.Children) > 0 {
			c := *n
			c.Children = h.applicable(n.Children)
			n = &c
		}
		kept = append(kept, n)
	}
	return kept
}

// reads reports whether keepalived reads an "@id" line on this host, whose config id is
// its host name, short or full.
func (h *host) reads(n *Node) bool {
	if h.node == "" {
		prefix := "@"
		if n.NotHost {
			prefix = "@^"
		}
		h.notes = append(h.notes, Note{Setting: prefix + n.Host + " " + settingText(n), At: []Pos{n.Pos},
			Text: "not converted: whether keepalived reads this line depends on the host; give the file's --node to decide"})
		return false
	}
	short, _, _ := strings.Cut(h.node, ".")
	return (n.Host == h.node || n.Host == short) != n.NotHost
}

// globalDefs takes the announcement defaults of global_defs and notes the rest.
func (h *host) globalDefs(n *Node) {
	for _, c := range n.Children {
		if h.garp.set(c, true) {
			continue
		}
		h.notes = append(h.notes, noteIn("global_defs", c, reasonFor(c.Keyword)))
	}
}

// untrackedScripts notes the vrrp_scripts that no instance tracks.
func (h *host) untrackedScripts(nodes []*Node) {
	for _, n := range nodes {
		if n.Keyword == "vrrp_script" && !h.tracked[firstArg(n)] {
			h.notes = append(h.notes, noteAt(n, "not converted: no vrrp_instance tracks it"))
		}
	}
}

// noteAt notes a statement.
func noteAt(n *Node, text string) Note {
	return Note{Setting: settingText(n), At: []Pos{n.Pos}, Text: text}
}

// noteIn notes a statement of a block, naming the block.
func noteIn(block string, n *Node, text string) Note {
	return Note{Setting: block + ": " + settingText(n), At: []Pos{n.Pos}, Text: text}
}

// maxSettingLength keeps a setting quoted in a comment readable.
const maxSettingLength = 120

// Credentials a setting may carry, which must not be copied into the output: the user
// part of a URL, and the values of curl's and wget's credential options.
var (
	urlCredentials    = regexp.MustCompile(`://[^/\s@]+@`)
	optionCredentials = regexp.MustCompile(`((?:^|\s)(?:-u|--user|--password|--http-password|--proxy-user)(?:\s+|=))\S+`)
)

// secretKeywords are settings whose value is a secret.
var secretKeywords = map[string]bool{"auth_pass": true, "password": true}

// settingText is a statement as it is quoted in a note: its words, "{...}" for a block's
// contents (which may hold secrets), credentials masked.
func settingText(n *Node) string {
	words := []string{n.Keyword}
	if secretKeywords[n.Keyword] && len(n.Args) > 0 {
		words = append(words, "***")
	} else {
		for _, a := range n.Args {
			if a == "" || strings.ContainsAny(a, " \t") {
				a = `"` + a + `"`
			}
			words = append(words, a)
		}
	}
	if n.Block {
		words = append(words, "{...}")
	}
	s := urlCredentials.ReplaceAllString(strings.Join(words, " "), "://***@")
	s = optionCredentials.ReplaceAllString(s, "${1}***")
	if len(s) > maxSettingLength {
		s = strings.ToValidUTF8(s[:maxSettingLength], "") + "..."
	}
	return s
}
