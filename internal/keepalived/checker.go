package keepalived

import (
	"fmt"
	"strings"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// checker is one LVS checker block (TCP_CHECK, HTTP_GET, ...) of a real_server.
type checker struct {
	node       *Node
	host, port string // connect_ip and connect_port, the real server's by default
	hostHeader string
	urls       []*Node
	command    *Node // MISC_CHECK's misc_path
	timing     lvsTiming
	notes      []Note
}

// readChecker reads a checker block.
func readChecker(n, rs *Node, t lvsTiming, hostHeader string) *checker {
	ck := &checker{node: n, hostHeader: hostHeader, timing: t.inherit()}
	if len(rs.Args) >= 2 {
		ck.host, ck.port = rs.Args[0], rs.Args[1]
	} else {
		ck.host = firstArg(rs)
	}
	for _, c := range n.Children {
		switch {
		case c.Keyword == "connect_ip":
			ck.host = firstArg(c)
		case c.Keyword == "connect_port":
			ck.port = firstArg(c)
		case c.Keyword == "virtualhost":
			ck.hostHeader = firstArg(c)
		case c.Keyword == "url":
			ck.urls = append(ck.urls, c)
		case c.Keyword == "misc_path":
			ck.command = c
		case c.Keyword == "misc_timeout":
			d, err := positiveSeconds(c, ck.timing.connectTimeout)
			if err != nil {
				ck.note(c, fmt.Sprintf("not mapped: %v", err))
			}
			ck.timing.connectTimeout, ck.timing.at["timeout"] = d, c
		case !ck.timing.set(c):
			ck.note(c, checkerReason(c.Keyword))
		}
	}
	return ck
}

func (ck *checker) note(n *Node, text string) {
	ck.notes = append(ck.notes, noteIn(ck.node.Keyword, n, text))
}

// checkerReason explains a checker keyword that does not map.
func checkerReason(keyword string) string {
	switch keyword {
	case "bindto", "bind_port", "bind_if", "fwmark":
		return "not mapped: Vigil's probes leave from the node's own address, routed as usual"
	case "alpha":
		return "not mapped: a Vigil check starts failing and passes after successThreshold successes"
	}
	return ipvsReason(keyword)
}

// checks maps the checker to health checks: one, or one per url of HTTP_GET and SSL_GET.
func (ck *checker) checks() ([]lvsCheck, []Note) {
	var probes []probe
	var bases []string
	switch ck.node.Keyword {
	case "TCP_CHECK":
		probes, bases = ck.single(tcpProbe(ck.host, ck.port)), []string{"tcp-" + ck.port}
	case "PING_CHECK":
		target, err := icmpTarget(ck.host, false)
		probes, bases = ck.single(probe{icmp: &vigilv1.ICMPCheck{Target: target}}, err), []string{"icmp"}
	case "MISC_CHECK":
		probes, bases = ck.misc(), []string{"misc"}
	case "HTTP_GET", "SSL_GET":
		probes, bases = ck.http()
	}
	var out []lvsCheck
	for i, p := range probes {
		lc := lvsCheck{base: bases[min(i, len(bases)-1)], check: vigilv1.HealthCheck{ICMP: p.icmp, TCP: p.tcp, HTTP: p.http}}
		lc.notes = ck.timingNotes(&lc.check, p)
		if len(p.notes) > 0 {
			lc.notes = append(lc.notes, noteAt(ck.node, strings.Join(p.notes, "; ")))
		}
		out = append(out, lc)
	}
	return out, append(ck.timing.notes, ck.notes...)
}

// timingNotes sets a check's schedule from the checker's and notes what had to change.
// keepalived marks a real server down after retry failed retries of a failed check, hence
// failureThreshold retry+1.
func (ck *checker) timingNotes(c *vigilv1.HealthCheck, p probe) []Note {
	t := ck.timing
	timeout := shorter(t.connectTimeout, p.timeout)
	if t.at["timeout"] == nil && p.timeout == 0 {
		timeout = min(timeout, t.delayLoop) // keepalived's default, not a setting to note
	}
	var notes []Note
	for _, tn := range setTiming(c, t.delayLoop, timeout, 1+t.retry, 1) {
		at := t.at[tn.field]
		if at == nil {
			at = ck.node
		}
		notes = append(notes, noteAt(at, tn.text))
	}
	return notes
}

// single returns the probe, or a note when it cannot be made.
func (ck *checker) single(p probe, err error) []probe {
	if err != nil {
		ck.note(ck.node, "not converted: "+err.Error())
		return nil
	}
	return []probe{p}
}

// misc maps MISC_CHECK's command like a vrrp_script's.
func (ck *checker) misc() []probe {
	if ck.command == nil {
		ck.note(ck.node, "not converted: it has no misc_path")
		return nil
	}
	line := firstArg(ck.command)
	if len(ck.command.Args) > 1 {
		line = ck.command.Raw
	}
	return ck.single(probeFromCommand(line))
}

// http maps each url block to an HTTP check.
func (ck *checker) http() ([]probe, []string) {
	if len(ck.urls) == 0 {
		ck.note(ck.node, "not converted: keepalived ignores an "+ck.node.Keyword+" without url")
		return nil, nil
	}
	https := ck.node.Keyword == "SSL_GET"
	var probes []probe
	var bases []string
	for _, u := range ck.urls {
		c, err := ck.url(u, https)
		if err != nil {
			ck.note(u, "not converted: "+err.Error())
			continue
		}
		p := probe{http: c}
		if https {
			p.notes = append(p.notes, "keepalived's SSL_GET does not verify the server's certificate; "+
				"insecureSkipVerify keeps that: remove it to have Vigil verify the certificate")
		}
		probes = append(probes, p)
		bases = append(bases, strings.ToLower(string(c.Scheme))+"-"+ck.port)
	}
	return probes, bases
}

// url reads one url block.
func (ck *checker) url(u *Node, https bool) (*vigilv1.HTTPCheck, error) {
	p, err := tcpProbe(ck.host, ck.port)
	if err != nil {
		return nil, err
	}
	c := &vigilv1.HTTPCheck{Host: p.tcp.Host, Port: p.tcp.Port, Path: "/", Scheme: vigilv1.HTTPSchemeHTTP}
	if https {
		c.Scheme, c.InsecureSkipVerify = vigilv1.HTTPSchemeHTTPS, true
	}
	header := ck.hostHeader
	for _, o := range u.Children {
		switch o.Keyword {
		case "path":
			if c.Path, err = urlPath(o); err != nil {
				return nil, err
			}
			if len(o.Args) > 1 {
				ck.note(o, "keepalived reads only the first word after path and ignores the rest; so does this conversion")
			}
		case "status_code":
			if c.ExpectedStatuses, err = parseStatuses(o.Args); err != nil {
				ck.note(o, fmt.Sprintf("not mapped: %v; any 2xx passes", err))
			}
		case "virtualhost":
			header = firstArg(o)
		case "digest":
			ck.note(o, "not mapped: Vigil checks the status code, not a digest of the body")
		default:
			ck.note(o, "not mapped: Vigil checks the status code only")
		}
	}
	if header != "" {
		h := strings.ToLower(header)
		if len(h) > 253 || !hostHeaderSyntax.MatchString(h) {
			ck.note(u, fmt.Sprintf("virtualhost %q is not mapped: hostHeader takes a DNS name", header))
		} else {
			c.HostHeader = h
		}
	}
	return c, nil
}

// urlPath reads "path /PATH"; like keepalived it takes the first word only.
func urlPath(n *Node) (string, error) {
	p := firstArg(n)
	if len(p) == 0 || len(p) > 1024 || !strings.HasPrefix(p, "/") || strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return "", fmt.Errorf("path %q: Vigil takes a path starting with '/', of printable ASCII up to 1024 characters", p)
	}
	return p, nil
}
