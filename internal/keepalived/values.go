package keepalived

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// maxSeconds bounds the durations read from keepalived (a week): longer values are typos,
// and bounding them keeps the arithmetic far from overflow.
const maxSeconds = 7 * 24 * 3600

// parseSeconds reads keepalived's durations: seconds, possibly with a fraction ("0.5"),
// rounded to the millisecond, the precision Vigil's durations are written with.
func parseSeconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxSeconds {
		return 0, fmt.Errorf("%q is not a number of seconds", s)
	}
	return time.Duration(math.Round(f*1000)) * time.Millisecond, nil
}

// parseInt reads a whole number in [lo, hi].
func parseInt(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not a whole number from %d to %d", s, lo, hi)
	}
	return n, nil
}

// clampDuration bounds d to [lo, hi]; changed says whether it had to.
func clampDuration(d, lo, hi time.Duration) (clamped time.Duration, changed bool) {
	clamped = min(max(d, lo), hi)
	return clamped, clamped != d
}

// firstArg is a statement's first argument, or "" when it has none.
func firstArg(n *Node) string {
	if len(n.Args) == 0 {
		return ""
	}
	return n.Args[0]
}

// errNoValue is the reason for a setting written without its value.
var errNoValue = errors.New("no value given")

// argSeconds reads a statement's single argument as seconds.
func argSeconds(n *Node) (time.Duration, error) {
	if len(n.Args) == 0 {
		return 0, errNoValue
	}
	return parseSeconds(n.Args[0])
}

// argInt reads a statement's single argument as a whole number in [lo, hi].
func argInt(n *Node, lo, hi int) (int, error) {
	if len(n.Args) == 0 {
		return 0, errNoValue
	}
	return parseInt(n.Args[0], lo, hi)
}

// dnsName is the host syntax Vigil's tcp and http checks accept besides IP literals.
var dnsName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// hostHeaderSyntax is the syntax of http.hostHeader: a DNS name, optionally with :port.
var hostHeaderSyntax = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?$`)

// checkHost returns the form of a probe's host that Vigil accepts: a canonical IP literal
// or a lower-case DNS name of at most 253 characters.
func checkHost(host string) (string, error) {
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.Zone() != "" || addr.Is4In6() {
			return "", fmt.Errorf("host %q: Vigil takes IP addresses without a zone, and IPv4 ones without the ::ffff: prefix", host)
		}
		return addr.String(), nil
	}
	lower := strings.ToLower(host)
	if len(lower) > 253 || !dnsName.MatchString(lower) {
		return "", fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
	}
	return lower, nil
}

// vipAddress checks that an address can be a VirtualIP's: a unicast address that is not
// loopback, link-local or unspecified, written in canonical form.
func vipAddress(addr netip.Addr) error {
	switch {
	case addr.Zone() != "":
		return errors.New("an address with a zone cannot be a VirtualIP")
	case addr.Is4In6():
		return errors.New("write an IPv4-mapped address as plain IPv4")
	case addr.IsUnspecified(), addr.IsLoopback(), addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return errors.New("an unspecified, loopback or link-local address cannot be a VirtualIP")
	case !addr.IsGlobalUnicast():
		return errors.New("a multicast or broadcast address cannot be a VirtualIP")
	}
	return nil
}

// interfaceName checks a Linux interface name as the VirtualIP schema does, and that it is
// printable ASCII: the object is JSON, which cannot carry arbitrary bytes.
func interfaceName(name string) error {
	printable := strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r > '~' }) < 0
	if name == "" || len(name) > 15 || !printable || strings.ContainsAny(name, "/:") || name == "." || name == ".." {
		return fmt.Errorf("%q is not a Linux interface name of at most 15 printable characters without '/', ':' or spaces", name)
	}
	return nil
}

// oneLine makes text safe for a one-line YAML comment: valid UTF-8, printable, no breaks.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}
