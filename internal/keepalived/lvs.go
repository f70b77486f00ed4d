package keepalived

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// lvsTiming is a checker's schedule, inherited virtual_server > real_server > checker, with
// keepalived's defaults.
type lvsTiming struct {
	delayLoop      time.Duration
	connectTimeout time.Duration
	retry          int
	// at holds where delay_loop, connect_timeout and retry are written, by the check field
	// they set: interval, timeout and fall.
	at    map[string]*Node
	notes []Note
}

var defaultLVSTiming = lvsTiming{delayLoop: 60 * time.Second, connectTimeout: 5 * time.Second, retry: 1}

// inherit is the timing a nested block starts from: the same schedule, and none of the
// notes, which the outer block reports itself.
func (t lvsTiming) inherit() lvsTiming {
	at := map[string]*Node{}
	for k, v := range t.at {
		at[k] = v
	}
	t.at, t.notes = at, nil
	return t
}

// set reads n if it is a timing keyword.
func (t *lvsTiming) set(n *Node) bool {
	var err error
	if t.at == nil {
		t.at = map[string]*Node{}
	}
	switch n.Keyword {
	case "delay_loop":
		t.delayLoop, err = positiveSeconds(n, t.delayLoop)
		t.at["interval"] = n
	case "connect_timeout":
		t.connectTimeout, err = positiveSeconds(n, t.connectTimeout)
		t.at["timeout"] = n
	case "retry", "nb_get_retry":
		var r int
		if r, err = argInt(n, 0, maxCount); err == nil {
			t.retry = r
		}
		t.at["fall"] = n
	case "delay_before_retry":
		t.notes = append(t.notes, noteAt(n, "not mapped: Vigil probes every interval, failed or not; failureThreshold counts the failures"))
	case "warmup":
		t.notes = append(t.notes, noteAt(n, "not mapped: Vigil starts probing at once, every interval"))
	default:
		return false
	}
	if err != nil {
		t.notes = append(t.notes, noteAt(n, fmt.Sprintf("not mapped: %v; keepalived ignores it too", err)))
	}
	return true
}

func positiveSeconds(n *Node, def time.Duration) (time.Duration, error) {
	d, err := argSeconds(n)
	if err == nil && d == 0 {
		return def, fmt.Errorf("0 is not allowed")
	}
	if err != nil {
		return def, err
	}
	return d, nil
}

// lvsCheck is one health check made from an LVS checker, with its notes.
type lvsCheck struct {
	check vigilv1.HealthCheck
	base  string // the name to derive the check's name from
	notes []Note
}

// virtualServer adds the checks of a virtual_server to the candidates with its address.
// keepalived's checkers only took failing real servers out of the IPVS pool; as Vigil
// checks they decide which node may hold the address, so they are added only when there is
// one real server.
func (h *host) virtualServer(n *Node) {
	addr, err := netip.ParseAddr(firstArg(n))
	var targets []int
	for i, c := range h.cands {
		if err == nil && c.addr == addr.Unmap() {
			targets = append(targets, i)
		}
	}
	if len(targets) == 0 {
		h.notes = append(h.notes, noteAt(n, "not converted: no vrrp_instance holds this address; "+whyIPVS))
		return
	}
	t := defaultLVSTiming
	var servers, others []*Node
	hostHeader := ""
	for _, c := range n.Children {
		switch {
		case c.Keyword == "real_server":
			servers = append(servers, c)
		case c.Keyword == "virtualhost":
			hostHeader = firstArg(c)
		case !t.set(c):
			others = append(others, c)
		}
	}
	notes := []Note{noteAt(n, virtualServerSummary(len(servers)))}
	notes = append(notes, groupNotes("virtual_server "+describeArgs(n), others)...)
	notes = append(notes, t.notes...)
	checks, serverNotes := realServerChecks(servers, t.inherit(), hostHeader)
	notes = append(notes, serverNotes...)
	for _, i := range targets {
		h.addLVSChecks(&h.cands[i], n, checks, notes)
	}
}

// virtualServerSummary says what became of a virtual_server with that many real servers.
func virtualServerSummary(servers int) string {
	switch servers {
	case 0:
		return "not converted: it has no real_server"
	case 1:
		return "its real_server's checks become health checks: keepalived only took a failing real server out " +
			"of the IPVS pool, while a failing Vigil check makes the node ineligible for the address"
	}
	return "its real servers' checks are not converted (see below): a Vigil check must pass on the node " +
		"that holds the address"
}

// groupNotes notes settings of a block in as few notes as there are reasons: one line
// for all the IPVS settings rather than one each.
func groupNotes(block string, nodes []*Node) []Note {
	var order []string
	byReason := map[string][]*Node{}
	for _, n := range nodes {
		r := ipvsReason(n.Keyword)
		if _, ok := byReason[r]; !ok {
			order = append(order, r)
		}
		byReason[r] = append(byReason[r], n)
	}
	var notes []Note
	for _, r := range order {
		var settings []string
		var at []Pos
		for _, n := range byReason[r] {
			settings = append(settings, settingText(n))
			at = append(at, n.Pos)
		}
		notes = append(notes, Note{Setting: block + ": " + strings.Join(settings, ", "), At: at, Text: r})
	}
	return notes
}

// addLVSChecks adds checks and notes to a candidate.
func (h *host) addLVSChecks(c *candidate, vs *Node, checks []lvsCheck, notes []Note) {
	c.notes = append(c.notes, notes...)
	for _, lc := range checks {
		c.notes = append(c.notes, lc.notes...)
		if err := addCheck(&c.spec, lc.check, lc.base); err != nil {
			c.notes = append(c.notes, Note{Setting: lc.base, At: []Pos{vs.Pos}, Text: err.Error()})
		}
	}
}

// ipvsReason explains a virtual_server or real_server keyword.
func ipvsReason(keyword string) string {
	if r := reasonFor(keyword); r != whyUnknown {
		return r
	}
	return whyIPVS
}

// realServerChecks maps the checkers of the real servers. With several real servers the
// checks are only described in notes: a check of every backend would tie the address to
// all of them.
func realServerChecks(servers []*Node, t lvsTiming, hostHeader string) ([]lvsCheck, []Note) {
	var notes []Note
	var all [][]lvsCheck
	for _, rs := range servers {
		checks, rsNotes := realServer(rs, t, hostHeader)
		notes = append(notes, rsNotes...)
		all = append(all, checks)
	}
	if len(servers) == 1 {
		return all[0], notes
	}
	for i, checks := range all {
		for _, lc := range checks {
			notes = append(notes, noteAt(servers[i], fmt.Sprintf("not converted: the virtual_server has %d real servers, and a check "+
				"of each would make the address depend on all of them; if this backend runs on every node, add the check %s",
				len(servers), describeCheck(lc.check))))
		}
	}
	return nil, notes
}

// realServer maps the checkers of one real_server.
func realServer(rs *Node, t lvsTiming, hostHeader string) ([]lvsCheck, []Note) {
	var notes []Note
	var checkers, others []*Node
	for _, c := range rs.Children {
		switch {
		case checkerKinds[c.Keyword]:
			checkers = append(checkers, c)
		case otherCheckers[c.Keyword]:
			notes = append(notes, noteIn("real_server "+describeArgs(rs), c, "not mapped: Vigil's checks are icmp, tcp and http"))
		case !t.set(c):
			others = append(others, c)
		}
	}
	notes = append(notes, groupNotes("real_server "+describeArgs(rs), others)...)
	notes = append(notes, t.notes...)
	var checks []lvsCheck
	for _, c := range checkers {
		ck := readChecker(c, rs, t.inherit(), hostHeader)
		made, ckNotes := ck.checks()
		checks = append(checks, made...)
		notes = append(notes, ckNotes...)
	}
	return checks, notes
}

// checkerKinds are the checker blocks of a real_server that map to Vigil checks.
var checkerKinds = map[string]bool{
	"TCP_CHECK": true, "HTTP_GET": true, "SSL_GET": true, "MISC_CHECK": true, "PING_CHECK": true,
}

// otherCheckers are the checker blocks that test what Vigil's checks cannot.
var otherCheckers = map[string]bool{
	"SMTP_CHECK": true, "DNS_CHECK": true, "UDP_CHECK": true, "BFD_CHECK": true, "FILE_CHECK": true,
}

func describeArgs(n *Node) string { return strings.Join(n.Args, " ") }

// describeCheck writes a check the way a reader would add it to a VirtualIP.
func describeCheck(c vigilv1.HealthCheck) string {
	switch {
	case c.TCP != nil:
		return fmt.Sprintf("tcp: {host: %s, port: %d}", c.TCP.Host, c.TCP.Port)
	case c.HTTP != nil:
		return fmt.Sprintf("http: {host: %s, port: %d, path: %s, scheme: %s}", c.HTTP.Host, c.HTTP.Port, c.HTTP.Path, c.HTTP.Scheme)
	case c.ICMP != nil:
		return fmt.Sprintf("icmp: {target: %s}", c.ICMP.Target)
	}
	return c.Name
}

// parseStatuses reads status_code values, codes or ranges such as 200-299. nil means any
// 2xx, Vigil's default.
func parseStatuses(args []string) ([]int32, error) {
	if len(args) == 0 {
		return nil, errNoValue
	}
	set := map[int32]bool{}
	for _, a := range args {
		lo, hi, isRange := strings.Cut(a, "-")
		if !isRange {
			hi = lo
		}
		from, err1 := parseInt(lo, 100, 599)
		to, err2 := parseInt(hi, from, 599)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("status_code %q is not a code or range within 100..599", a)
		}
		for code := from; code <= to; code++ {
			set[int32(code)] = true
		}
	}
	codes := make([]int32, 0, len(set))
	for c := range set {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool { return codes[i] < codes[j] })
	if len(codes) == 100 && codes[0] == 200 && codes[99] == 299 {
		return nil, nil
	}
	if len(codes) > 16 {
		return nil, fmt.Errorf("%d status codes: Vigil takes at most 16 expectedStatuses", len(codes))
	}
	return codes, nil
}
