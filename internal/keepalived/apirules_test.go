package keepalived

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// The rules below restate the VirtualIP schema (api/v1alpha1/virtualip_types.go) so that
// tests and the fuzzer can check every object without an API server; test/convert checks
// the golden files against a real one.
var (
	durationSyntax = regexp.MustCompile(`^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$`)
	checkNameRule  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	hostRule       = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	hostHeaderRule = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?$`)
)

// apiRules returns what the API server would reject in v.
func apiRules(v vigilv1.VirtualIP) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if e := validation.IsDNS1123Label(v.Name); len(e) > 0 {
		fail("name %q: %v", v.Name, e)
	}
	s := v.Spec
	addr, err := netip.ParseAddr(s.Address)
	if err != nil || addr.String() != s.Address || addr.Is4In6() || !addr.IsGlobalUnicast() || addr.IsLinkLocalUnicast() {
		fail("address %q", s.Address)
	}
	if p := s.PrefixLength; p != nil && (*p < 1 || *p > 128 || (addr.Is4() && *p > 32)) {
		fail("prefixLength %d", *p)
	}
	if i := s.Interface; i != "" && (len(i) > 15 || strings.ContainsAny(i, "/: ") || i == "." || i == "..") {
		fail("interface %q", i)
	}
	if s.NodeSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(s.NodeSelector); err != nil {
			fail("nodeSelector: %v", err)
		}
	}
	errs = append(errs, priorityRules(s)...)
	errs = append(errs, checkRules(s.HealthChecks)...)
	return append(errs, announceRules(s.Announce)...)
}

func priorityRules(s vigilv1.VirtualIPSpec) []string {
	var errs []string
	if len(s.Priorities) > 32 {
		errs = append(errs, "more than 32 priorities")
	}
	for _, p := range s.Priorities {
		if p.Priority < 1 || p.Priority > 255 {
			errs = append(errs, fmt.Sprintf("priority %d", p.Priority))
		}
		for k, val := range p.NodeSelector.MatchLabels {
			if len(validation.IsQualifiedName(k)) > 0 || len(validation.IsValidLabelValue(val)) > 0 {
				errs = append(errs, fmt.Sprintf("label %s=%s", k, val))
			}
		}
	}
	switch s.Preemption {
	case "", vigilv1.PreemptionNever, vigilv1.PreemptionAlways:
	default:
		errs = append(errs, fmt.Sprintf("preemption %q", s.Preemption))
	}
	if d := s.PreemptionDelay; d != nil {
		if s.Preemption != vigilv1.PreemptionAlways || !inRange(d.Duration, 0, 24*time.Hour) {
			errs = append(errs, fmt.Sprintf("preemptionDelay %s with %q", d.Duration, s.Preemption))
		}
	}
	return errs
}

func checkRules(checks []vigilv1.HealthCheck) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if len(checks) > 16 {
		fail("%d checks", len(checks))
	}
	names := map[string]bool{}
	for _, c := range checks {
		if names[c.Name] || len(c.Name) > 63 || !checkNameRule.MatchString(c.Name) {
			fail("check name %q", c.Name)
		}
		names[c.Name] = true
		kinds := 0
		for _, set := range []bool{c.ICMP != nil, c.TCP != nil, c.HTTP != nil} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			fail("check %s has %d kinds", c.Name, kinds)
		}
		interval := c.Interval.Duration
		if interval == 0 {
			interval = time.Second
		}
		if c.Interval.Duration != 0 && !inRange(c.Interval.Duration, 100*time.Millisecond, time.Hour) {
			fail("check %s interval %s", c.Name, c.Interval.Duration)
		}
		if c.Timeout != nil && !inRange(c.Timeout.Duration, 10*time.Millisecond, interval) {
			fail("check %s timeout %s (interval %s)", c.Name, c.Timeout.Duration, interval)
		}
		for _, n := range []int32{c.FailureThreshold, c.SuccessThreshold} {
			if n < 0 || n > 100 {
				fail("check %s threshold %d", c.Name, n)
			}
		}
		errs = append(errs, probeRules(c)...)
	}
	return errs
}

func probeRules(c vigilv1.HealthCheck) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	host := func(h string) {
		if a, err := netip.ParseAddr(h); err == nil && (a.Is4In6() || a.Zone() != "") || err != nil && (len(h) > 253 || !hostRule.MatchString(h)) {
			fail("check %s host %q", c.Name, h)
		}
	}
	switch {
	case c.ICMP != nil:
		if a, err := netip.ParseAddr(c.ICMP.Target); c.ICMP.Target != "gateway" && (err != nil || a.Is4In6() || a.Zone() != "") {
			fail("check %s target %q", c.Name, c.ICMP.Target)
		}
	case c.TCP != nil:
		host(c.TCP.Host)
		if c.TCP.Port < 1 || c.TCP.Port > 65535 {
			fail("check %s port %d", c.Name, c.TCP.Port)
		}
	case c.HTTP != nil:
		h := c.HTTP
		host(h.Host)
		if h.Port < 1 || h.Port > 65535 || (h.Path != "" && (!strings.HasPrefix(h.Path, "/") || len(h.Path) > 1024)) {
			fail("check %s port %d path %q", c.Name, h.Port, h.Path)
		}
		if h.HostHeader != "" && (len(h.HostHeader) > 253 || !hostHeaderRule.MatchString(h.HostHeader)) {
			fail("check %s hostHeader %q", c.Name, h.HostHeader)
		}
		if h.InsecureSkipVerify && h.Scheme != vigilv1.HTTPSchemeHTTPS || h.Scheme != "" && h.Scheme != "HTTP" && h.Scheme != "HTTPS" {
			fail("check %s scheme %q insecure %v", c.Name, h.Scheme, h.InsecureSkipVerify)
		}
		seen := map[int32]bool{}
		for _, s := range h.ExpectedStatuses {
			if s < 100 || s > 599 || seen[s] {
				fail("check %s status %d", c.Name, s)
			}
			seen[s] = true
		}
		if len(h.ExpectedStatuses) > 16 {
			fail("check %s has %d statuses", c.Name, len(h.ExpectedStatuses))
		}
	}
	return errs
}

func announceRules(a vigilv1.Announce) []string {
	var errs []string
	if a.Count < 0 || a.Count > 100 {
		errs = append(errs, fmt.Sprintf("announce count %d", a.Count))
	}
	if d := a.Interval.Duration; d != 0 && !inRange(d, 10*time.Millisecond, 10*time.Second) {
		errs = append(errs, fmt.Sprintf("announce interval %s", d))
	}
	if d := a.RefreshInterval.Duration; d != 0 && !inRange(d, time.Second, 24*time.Hour) {
		errs = append(errs, fmt.Sprintf("refreshInterval %s", d))
	}
	return errs
}

func inRange(d, lo, hi time.Duration) bool { return d >= lo && d <= hi }

// durationsWritable checks that every duration of the YAML is in the schema's syntax (no
// "µs"), which the Go types would not notice.
func durationsWritable(doc []byte) []string {
	var errs []string
	for _, line := range strings.Split(nonComment(doc), "\n") {
		key, val, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if ok && (strings.HasSuffix(strings.ToLower(key), "interval") || key == "timeout" || key == "preemptionDelay") {
			if !durationSyntax.MatchString(val) {
				errs = append(errs, fmt.Sprintf("%s: %q is not a schema duration", key, val))
			}
		}
	}
	return errs
}

// checkOutput checks a WriteYAML output against the Result it was written from: the header
// is comments only, every document strict-unmarshals into exactly its VirtualIP, which the
// API would accept, names are unique, and every comment is one printable line.
func checkOutput(t *testing.T, out []byte, res Result) {
	t.Helper()
	docs := bytes.Split(out, []byte("\n---\n"))
	if !bytes.HasPrefix(out, []byte("#")) || nonComment(docs[0]) != "" {
		t.Fatalf("the header is not only comments:\n%s", docs[0])
	}
	docs = docs[1:]
	if len(docs) != len(res.VirtualIPs) {
		t.Fatalf("%d documents for %d VirtualIPs:\n%s", len(docs), len(res.VirtualIPs), out)
	}
	names := map[string]bool{}
	for i, doc := range docs {
		want := res.VirtualIPs[i].Object
		var got vigilv1.VirtualIP
		if err := yaml.UnmarshalStrict(doc, &got); err != nil {
			t.Fatalf("document %d does not strict-unmarshal into a VirtualIP: %v\n%s", i, err, doc)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("document %d reads back as\n%s\nnot\n%s\nYAML:\n%s", i, asJSON(got), asJSON(want), doc)
		}
		if errs := append(apiRules(got), durationsWritable(doc)...); len(errs) > 0 {
			t.Fatalf("the API server would reject %s: %s\n%s", got.Name, strings.Join(errs, "; "), doc)
		}
		if names[got.Name] {
			t.Fatalf("two VirtualIPs named %s", got.Name)
		}
		names[got.Name] = true
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "#") && (strings.ContainsFunc(line, func(r rune) bool { return r < ' ' || r == 0x7f }) || !utf8Valid(line)) {
			t.Fatalf("comment line is not printable: %q", line)
		}
	}
}

// nonComment returns the lines of doc that are not comments or empty.
func nonComment(doc []byte) string {
	var rest []string
	for _, line := range strings.Split(string(doc), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			rest = append(rest, line)
		}
	}
	return strings.Join(rest, "\n")
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }

func asJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
