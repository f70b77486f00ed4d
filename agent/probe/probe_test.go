package probe_test

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"vigil.dev/vigil/agent/probe"
	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/netnsutil"
	"vigil.dev/vigil/test/lab"
)

// probeLab is a 2-node lab; probes run inside node-a.
type probeLab struct {
	l   *lab.Lab
	env probe.Env
	ns  netns.NsHandle
}

func newProbeLab(t *testing.T) *probeLab {
	t.Helper()
	l := lab.ForTest(t, lab.Config{Nodes: 2, WithoutControlPlane: true})
	ns := lab.NamespaceForTest(t, l.Nodes[0])
	gw, err := probe.NetlinkGateway(ns)
	if err != nil {
		t.Fatal(err)
	}
	return &probeLab{l: l, ns: ns, env: probe.Env{NS: ns, Gateway: gw}}
}

// listen opens a TCP listener inside node-a's namespace, served from this test process.
func (p *probeLab) listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := netnsutil.Do(p.ns, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	return ln
}

func check(name string, timeout time.Duration) vigilv1.HealthCheck {
	return vigilv1.HealthCheck{Name: name, Interval: metav1.Duration{Duration: time.Second}, Timeout: &metav1.Duration{Duration: timeout},
		FailureThreshold: 3, SuccessThreshold: 1}
}

func run(t *testing.T, c vigilv1.HealthCheck, target probe.Target, env probe.Env) (time.Duration, error) {
	t.Helper()
	pr, err := probe.New(c, target, env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.EffectiveTimeout())
	defer cancel()
	start := time.Now()
	err = pr.Probe(ctx)
	return time.Since(start), err
}

func expect(t *testing.T, what string, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("%s: %v, want success", what, err)
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Errorf("%s: %v, want an error containing %q", what, err, wantErr)
	}
}

func TestTCPProbe(t *testing.T) {
	p := newProbeLab(t)
	b := p.l.Nodes[1]
	// Silently drop node-b's port 80 for node-a: the probe must give up at its timeout.
	if _, err := p.l.Exec(b.Name, "nft", "add table inet t; add chain inet t in { type filter hook input priority 0; }; add rule inet t in tcp dport 80 drop"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, host string
		port       int32
		wantErr    string
	}{
		{"up", "127.0.0.1", 80, ""},
		{"up over IPv6", "::1", 80, ""},
		{"up, by name", "localhost", 80, ""},
		{"refused", "127.0.0.1", 81, "connection refused"},
		{"silently dropped", b.IPv4.String(), 80, "timed out"},
	}
	for _, tc := range cases {
		c := check("tcp", 300*time.Millisecond)
		c.TCP = &vigilv1.TCPCheck{Host: tc.host, Port: tc.port}
		took, err := run(t, c, probe.Target{}, p.env)
		expect(t, tc.name, err, tc.wantErr)
		if tc.wantErr == "timed out" && (took < 290*time.Millisecond || took > 600*time.Millisecond) {
			t.Errorf("dropped: gave up after %v, want the 300ms timeout", took)
		}
	}
}

func TestHTTPProbe(t *testing.T) {
	p := newProbeLab(t)
	var mu sync.Mutex
	var hosts []string
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		switch r.URL.Path {
		case "/healthz":
			_, _ = w.Write([]byte("ok"))
		case "/fail":
			http.Error(w, "broken", http.StatusInternalServerError)
		case "/slow":
			time.Sleep(time.Second)
		default:
			http.NotFound(w, r)
		}
	})
	plain := &http.Server{Handler: handler, ReadHeaderTimeout: time.Second}
	plainLn := p.listen(t, "127.0.0.1:8080")
	go func() { _ = plain.Serve(plainLn) }()
	t.Cleanup(func() { _ = plain.Close() })
	tlsSrv := httptest.NewUnstartedServer(handler)
	tlsSrv.Listener = p.listen(t, "127.0.0.1:8443")
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	// A server that answers with raw bytes: an informational answer before the real one, or
	// something that is not HTTP.
	raw := p.listen(t, "127.0.0.1:8082")
	t.Cleanup(func() { _ = raw.Close() })
	go lab.ServeEach(raw, func(c net.Conn) {
		buf := make([]byte, 1024)
		n, _ := c.Read(buf)
		if strings.Contains(string(buf[:n]), "GET /early-hints ") {
			_, _ = c.Write([]byte("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
			return
		}
		_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
	})
	trusted := x509.NewCertPool()
	trusted.AddCert(tlsSrv.Certificate())
	withCA := p.env
	withCA.RootCAs = trusted

	cases := []struct {
		name     string
		http     vigilv1.HTTPCheck
		env      probe.Env
		wantErr  string
		maxTaken time.Duration
	}{
		{"200", vigilv1.HTTPCheck{Port: 8080, Path: "/healthz"}, p.env, "", 0},
		{"500", vigilv1.HTTPCheck{Port: 8080, Path: "/fail"}, p.env, "status 500 Internal Server Error (want 2xx)", 0},
		{"wrong path", vigilv1.HTTPCheck{Port: 8080, Path: "/nope"}, p.env, "status 404 Not Found (want 2xx)", 0},
		{"expected 404", vigilv1.HTTPCheck{Port: 8080, Path: "/nope", ExpectedStatuses: []int32{404}}, p.env, "", 0},
		{"200 not expected", vigilv1.HTTPCheck{Port: 8080, Path: "/healthz", ExpectedStatuses: []int32{204}}, p.env, "want [204]", 0},
		{"slower than the timeout", vigilv1.HTTPCheck{Port: 8080, Path: "/slow"}, p.env, "timed out", 600 * time.Millisecond},
		{"nobody listening", vigilv1.HTTPCheck{Port: 8081, Path: "/"}, p.env, "connection refused", 0},
		{"informational answer first", vigilv1.HTTPCheck{Port: 8082, Path: "/early-hints"}, p.env, "", 0},
		{"not HTTP", vigilv1.HTTPCheck{Port: 8082, Path: "/"}, p.env, "malformed HTTP", 0},
		{"HTTPS trusted", vigilv1.HTTPCheck{Port: 8443, Path: "/healthz", Scheme: vigilv1.HTTPSchemeHTTPS, HostHeader: "example.com"}, withCA, "", 0},
		{"HTTPS untrusted", vigilv1.HTTPCheck{Port: 8443, Path: "/healthz", Scheme: vigilv1.HTTPSchemeHTTPS, HostHeader: "example.com"}, p.env, "TLS certificate not trusted", 0},
		{"HTTPS untrusted but insecureSkipVerify", vigilv1.HTTPCheck{Port: 8443, Path: "/healthz", Scheme: vigilv1.HTTPSchemeHTTPS, InsecureSkipVerify: true}, p.env, "", 0},
	}
	for _, tc := range cases {
		c := check("http", 300*time.Millisecond)
		h := tc.http
		h.Host = "127.0.0.1"
		c.HTTP = &h
		took, err := run(t, c, probe.Target{}, tc.env)
		expect(t, tc.name, err, tc.wantErr)
		if tc.maxTaken > 0 && took > tc.maxTaken {
			t.Errorf("%s: took %v, want at most %v", tc.name, took, tc.maxTaken)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(strings.Join(hosts, " "), "example.com") {
		t.Errorf("hostHeader never sent; hosts seen: %v", hosts)
	}
}

func TestICMPProbe(t *testing.T) {
	p := newProbeLab(t)
	b := p.l.Nodes[1]
	cases := []struct {
		name, target string
		vip          netip.Addr
		wantErr      string
	}{
		{"live IPv4", b.IPv4.String(), lab.VIPv4(0), ""},
		{"live IPv6", b.IPv6.String(), lab.VIPv6(0), ""},
		{"loopback", "127.0.0.1", lab.VIPv4(0), ""},
		{"dead address", "198.18.0.99", lab.VIPv4(0), "timed out"},
		{"gateway of an IPv4 VIP", "gateway", lab.VIPv4(0), ""},
		{"gateway of an IPv6 VIP", "gateway", lab.VIPv6(0), ""},
	}
	for _, tc := range cases {
		c := check("icmp", 300*time.Millisecond)
		c.ICMP = &vigilv1.ICMPCheck{Target: tc.target}
		_, err := run(t, c, probe.Target{VIP: tc.vip, Interface: lab.NodeInterface}, p.env)
		expect(t, tc.name, err, tc.wantErr)
	}
	gw := p.env.Gateway
	for _, tc := range []struct{ vip, want netip.Addr }{{lab.VIPv4(0), lab.GatewayV4}, {lab.VIPv6(0), lab.GatewayV6}} {
		if got, err := gw(lab.NodeInterface, tc.vip); err != nil || got != tc.want {
			t.Errorf("gateway for %s: %s, %v; want %s", tc.vip, got, err, tc.want)
		}
	}
	if _, err := gw("lo", lab.VIPv4(0)); err == nil {
		t.Error("gateway of an interface without a default route resolved")
	}
}

// transitions collects what the Manager reports.
type transitions struct {
	mu  sync.Mutex
	got []struct {
		at time.Time
		h  probe.Health
	}
}

func (tr *transitions) record(_ string, h probe.Health) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.got = append(tr.got, struct {
		at time.Time
		h  probe.Health
	}{time.Now(), h})
}

func (tr *transitions) waitFor(t *testing.T, eligible bool, within time.Duration) (time.Time, string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		tr.mu.Lock()
		if n := len(tr.got); n > 0 && tr.got[n-1].h.Eligible == eligible {
			last := tr.got[n-1]
			tr.mu.Unlock()
			return last.at, last.h.Reason
		}
		tr.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("eligible=%v not reported within %v", eligible, within)
	return time.Time{}, ""
}

func (tr *transitions) count() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.got)
}

func TestManagerReportsTransitionsWithHysteresis(t *testing.T) {
	p := newProbeLab(t)
	tr := &transitions{}
	m := probe.NewManager(p.env, logr.Discard(), tr.record)
	ln := p.listen(t, "127.0.0.1:9000")
	go lab.ServeEach(ln, func(net.Conn) {}) // a service a TCP check finds up
	interval := 100 * time.Millisecond
	c := vigilv1.HealthCheck{Name: "svc", TCP: &vigilv1.TCPCheck{Host: "127.0.0.1", Port: 9000},
		Interval: metav1.Duration{Duration: interval}, FailureThreshold: 3, SuccessThreshold: 2}
	m.Set("web", probe.Target{VIP: lab.VIPv4(0), Interface: lab.NodeInterface}, []vigilv1.HealthCheck{c})
	if h := m.Health("web"); h.Eligible || !strings.Contains(h.Reason, "no verdict yet") {
		t.Errorf("before any probe: %+v, want not eligible, no verdict yet", h)
	}
	tr.waitFor(t, true, 2*time.Second)

	// The service dies: not eligible on exactly the 3rd miss, so after about 3 intervals.
	down := time.Now()
	_ = ln.Close()
	at, reason := tr.waitFor(t, false, 2*time.Second)
	// The reason below proves it was the 3rd miss; the timing allows a busy machine.
	if took := at.Sub(down); took < 2*interval || took > 6*interval {
		t.Errorf("became ineligible %v after the service died, want about 3 intervals (%v)", took, 3*interval)
	}
	if reason != "tcp 127.0.0.1:9000: connection refused (3 in a row)" {
		t.Errorf("reason %q", reason)
	}
	// It comes back: eligible on the 2nd success in a row.
	up := time.Now()
	ln = p.listen(t, "127.0.0.1:9000")
	defer func() { _ = ln.Close() }()
	at, reason = tr.waitFor(t, true, 2*time.Second)
	if took := at.Sub(up); took < interval || took > 5*interval {
		t.Errorf("eligible again %v after the service returned, want about 2 intervals", took)
	}
	if reason != "all health checks passing" {
		t.Errorf("reason %q", reason)
	}
	// Only transitions are reported, not every probe.
	before := tr.count()
	time.Sleep(5 * interval)
	if tr.count() != before {
		t.Errorf("%d reports while nothing changed", tr.count()-before)
	}

	// Changing one check leaves the VIP eligible (the verdict carries over); adding a
	// failing check makes it ineligible, with that check's reason.
	c2 := c
	c2.FailureThreshold = 5
	bad := vigilv1.HealthCheck{Name: "bad", TCP: &vigilv1.TCPCheck{Host: "127.0.0.1", Port: 9001},
		Interval: metav1.Duration{Duration: interval}, FailureThreshold: 1, SuccessThreshold: 1}
	m.Set("web", probe.Target{VIP: lab.VIPv4(0), Interface: lab.NodeInterface}, []vigilv1.HealthCheck{c2})
	if h := m.Health("web"); !h.Eligible {
		t.Errorf("editing a passing check made the VIP ineligible: %+v", h)
	}
	m.Set("web", probe.Target{VIP: lab.VIPv4(0), Interface: lab.NodeInterface}, []vigilv1.HealthCheck{c2, bad})
	if h := m.Health("web"); h.Eligible || h.Reason != "bad: no verdict yet" {
		t.Errorf("with a new, unproven check: %+v, want not eligible until it has a verdict", h)
	}
	deadline := time.Now().Add(2 * time.Second)
	for m.Health("web").Reason != "tcp 127.0.0.1:9001: connection refused" {
		if time.Now().After(deadline) {
			t.Fatalf("the failing check's reason never reported: %+v", m.Health("web"))
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Every probe goroutine stops on shutdown.
	m.Stop()
	var stacks strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
	if strings.Contains(stacks.String(), "agent/probe.(*Manager).probeOnce") {
		t.Errorf("probe goroutines left after Stop:\n%s", stacks.String())
	}
}

// VIPs probing the same thing share one probe; each keeps its own thresholds.
func TestIdenticalProbesAreSharedAcrossVIPs(t *testing.T) {
	p := newProbeLab(t)
	tr := &transitions{}
	m := probe.NewManager(p.env, logr.Discard(), tr.record)
	defer m.Stop()
	interval := 100 * time.Millisecond
	mk := func(fall int32) vigilv1.HealthCheck {
		return vigilv1.HealthCheck{Name: "svc", TCP: &vigilv1.TCPCheck{Host: "127.0.0.1", Port: 9100},
			Interval: metav1.Duration{Duration: interval}, FailureThreshold: fall, SuccessThreshold: 1}
	}
	target := probe.Target{VIP: lab.VIPv4(0), Interface: lab.NodeInterface}
	m.Set("fast", target, []vigilv1.HealthCheck{mk(1)})
	m.Set("slow", target, []vigilv1.HealthCheck{mk(5)})
	if n := m.Probes(); n != 1 {
		t.Fatalf("%d probes for two VIPs checking the same port, want 1", n)
	}
	// Nothing listens on 9100: "fast" fails at the first result, "slow" too (Unknown fails
	// at once). Then a listener comes up and both pass.
	deadline := time.Now().Add(2 * time.Second)
	for m.Health("fast").Reason != "tcp 127.0.0.1:9100: connection refused" || m.Health("slow").Reason != "tcp 127.0.0.1:9100: connection refused" {
		if time.Now().After(deadline) {
			t.Fatalf("fast %+v, slow %+v", m.Health("fast"), m.Health("slow"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.Remove("fast")
	if n := m.Probes(); n != 1 {
		t.Errorf("%d probes after removing one of two VIPs, want 1", n)
	}
	m.Remove("slow")
	if n := m.Probes(); n != 0 {
		t.Errorf("%d probes after removing both VIPs, want 0", n)
	}
}

// A VIP whose check joins a probe that already runs for another VIP, with the same fall and
// rise, takes that check's verdict at once (both have seen the same results); with another
// fall or rise it waits for the probe's next run, as a new probe would.
func TestANewCheckOnARunningProbeTakesItsVerdict(t *testing.T) {
	p := newProbeLab(t)
	tr := &transitions{}
	m := probe.NewManager(p.env, logr.Discard(), tr.record)
	defer m.Stop()
	ln := p.listen(t, "127.0.0.1:9101")
	defer func() { _ = ln.Close() }()
	go lab.ServeEach(ln, func(net.Conn) {}) // a service a TCP check finds up
	mk := func(rise int32) vigilv1.HealthCheck {
		return vigilv1.HealthCheck{Name: "svc", TCP: &vigilv1.TCPCheck{Host: "127.0.0.1", Port: 9101},
			Interval: metav1.Duration{Duration: 10 * time.Second}, FailureThreshold: 3, SuccessThreshold: rise}
	}
	target := probe.Target{VIP: lab.VIPv4(0), Interface: lab.NodeInterface}
	m.Set("first", target, []vigilv1.HealthCheck{mk(1)})
	deadline := time.Now().Add(2 * time.Second)
	for !m.Health("first").Eligible {
		if time.Now().After(deadline) {
			t.Fatalf("first: %+v", m.Health("first"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The next probe runs 10 s after the first: only the verdict already there can make
	// these eligible now.
	m.Set("second", target, []vigilv1.HealthCheck{mk(1)})
	if h := m.Health("second"); !h.Eligible {
		t.Errorf("second, same fall and rise: %+v, want the first's verdict (eligible) at once", h)
	}
	m.Set("other-rise", target, []vigilv1.HealthCheck{mk(2)})
	if h := m.Health("other-rise"); h.Eligible || !h.Unknown {
		t.Errorf("other-rise, another rise: %+v, want no verdict yet", h)
	}
	if n := m.Probes(); n != 1 {
		t.Errorf("%d probes, want 1 shared", n)
	}
}
