// Package probe runs a VirtualIP's health checks on a node — ICMP echo, TCP connect,
// HTTP(S) GET — with keepalived's fall/rise hysteresis, and reports only transitions.
package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/net/http/httpguts"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/netnsutil"
)

// Prober runs one probe attempt; ctx carries the check's timeout.
type Prober interface {
	Probe(ctx context.Context) error
	// String names the probe for people: "tcp 127.0.0.1:80".
	String() string
}

// Env is where probes run.
type Env struct {
	// NS is the network namespace probe sockets are opened in (netns.None(): the caller's).
	NS netns.NsHandle
	// Gateway resolves the ICMP target "gateway": the default-route gateway of ifname for
	// the family of vip.
	Gateway func(ifname string, vip netip.Addr) (netip.Addr, error)
	// RootCAs verifies HTTPS (nil: the system's roots).
	RootCAs *x509.CertPool

	pingers *pingers // shared ICMP sockets, set by the Manager
}

// Target is the VIP whose checks run, and the interface it is (or would be) bound on.
type Target struct {
	VIP       netip.Addr
	Interface string
}

// deadlineProber is what the Manager calls: the timeout as a deadline beside ctx (which
// the Manager cancels when the probe stops), which spares a context and its timer per
// probe.
type deadlineProber interface {
	Prober
	probe(ctx context.Context, deadline time.Time) error
}

// New builds the prober for one health check.
func New(c vigilv1.HealthCheck, t Target, env Env) (Prober, error) {
	switch {
	case c.TCP != nil:
		return newTCPProbe(c.TCP, env), nil
	case c.HTTP != nil:
		return newHTTPProbe(c.HTTP, env)
	case c.ICMP != nil:
		return newICMPProbe(c.ICMP.Target, t, env)
	}
	return nil, fmt.Errorf("health check %q has no icmp, tcp or http", c.Name)
}

// dial opens a connection from inside the environment's namespace: for a DNS name, whose
// resolution net.Dialer does, and for HTTPS.
func (env Env) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := netnsutil.Do(env.NS, func() (err error) {
		conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// ipPort is host:port as an address the raw connect takes, when host is an IP literal
// without a zone (a zone's name would be looked up in the calling thread's namespace).
func ipPort(host string, port int32) (netip.AddrPort, bool) {
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), true //nolint:gosec // the CRD bounds port to 1..65535
}

type tcpProbe struct {
	addr, name string
	ap         netip.AddrPort // valid: connect with raw system calls
	env        Env
}

func newTCPProbe(c *vigilv1.TCPCheck, env Env) *tcpProbe {
	addr := net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port)))
	ap, _ := ipPort(c.Host, c.Port)
	return &tcpProbe{addr: addr, name: "tcp " + addr, ap: ap, env: env}
}

func (p *tcpProbe) String() string { return p.name }

func (p *tcpProbe) Probe(ctx context.Context) error {
	deadline, _ := ctx.Deadline()
	return p.probe(ctx, deadline)
}

func (p *tcpProbe) probe(ctx context.Context, deadline time.Time) error {
	if p.ap.IsValid() {
		if _, err := p.env.connect(ctx, p.ap, deadline, false); err != nil {
			return cause(ctx, err)
		}
		return nil
	}
	ctx, cancel := withDeadline(ctx, deadline)
	defer cancel()
	conn, err := p.env.dial(ctx, "tcp", p.addr)
	if err != nil {
		return cause(ctx, err)
	}
	return conn.Close()
}

// withDeadline is ctx with the deadline, if there is one.
func withDeadline(ctx context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	if deadline.IsZero() {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, deadline)
}

// maxBody bounds what is read of an HTTP answer: enough to take in a small response whole,
// so that closing the connection does not reset it.
const maxBody = 4 << 10

// buffers are the HTTP probes' read buffers.
var buffers = sync.Pool{New: func() any { return new([maxBody]byte) }}

// httpProbe sends a GET of its own, on a fresh connection per probe with "Connection:
// close" (a kept-alive connection to a dead backend, or one behind a load balancer, could
// hide that new connections fail), and judges the status line. Redirects are answers: a
// 301 is judged by expectedStatuses, not followed.
type httpProbe struct {
	url, name string
	addr      string         // host:port
	ap        netip.AddrPort // valid for plain HTTP to an IP address: raw connect
	request   []byte
	expected  []int32
	tls       *tls.Config // HTTPS
	env       Env
}

func newHTTPProbe(h *vigilv1.HTTPCheck, env Env) (*httpProbe, error) {
	scheme := "http"
	if h.Scheme == vigilv1.HTTPSchemeHTTPS {
		scheme = "https"
	}
	path := h.Path
	if path == "" {
		path = "/"
	}
	addr := net.JoinHostPort(h.Host, strconv.Itoa(int(h.Port)))
	p := &httpProbe{url: fmt.Sprintf("%s://%s%s", scheme, addr, path), addr: addr, expected: h.ExpectedStatuses, env: env}
	p.name = "http " + p.url
	u, err := url.Parse(p.url)
	if err != nil {
		return nil, fmt.Errorf("http check URL: %w", err)
	}
	host := addr
	if h.HostHeader != "" {
		host = h.HostHeader
	}
	if !httpguts.ValidHostHeader(host) {
		return nil, fmt.Errorf("http check: invalid Host header %q", host)
	}
	p.request = []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + host +
		"\r\nUser-Agent: vigil-health-check\r\nConnection: close\r\n\r\n")
	if scheme == "https" {
		serverName := h.Host
		if h.HostHeader != "" {
			serverName, _, _ = strings.Cut(h.HostHeader, ":")
		}
		p.tls = &tls.Config{
			ServerName:         serverName,
			RootCAs:            env.RootCAs,
			InsecureSkipVerify: h.InsecureSkipVerify, //nolint:gosec // the user's explicit choice, off by default
		}
	} else {
		p.ap, _ = ipPort(h.Host, h.Port)
	}
	return p, nil
}

func (p *httpProbe) String() string { return p.name }

func (p *httpProbe) Probe(ctx context.Context) error {
	deadline, _ := ctx.Deadline()
	return p.probe(ctx, deadline)
}

func (p *httpProbe) probe(ctx context.Context, deadline time.Time) error {
	conn, err := p.open(ctx, deadline)
	if err != nil {
		return cause(ctx, err)
	}
	defer func() { _ = conn.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	defer stop()
	var rw io.ReadWriter = conn
	if p.tls != nil {
		tc := tls.Client(conn.(net.Conn), p.tls) //nolint:forcetypeassert // open dials HTTPS with net.Dialer
		if err := tc.HandshakeContext(ctx); err != nil {
			return cause(ctx, err)
		}
		rw = tc
	}
	status, code, err := p.exchange(rw)
	if err != nil {
		return cause(ctx, err)
	}
	if len(p.expected) == 0 {
		if code < 200 || code > 299 {
			return fmt.Errorf("status %s (want 2xx)", status)
		}
		return nil
	}
	if !slices.Contains(p.expected, int32(code)) { //nolint:gosec // a 3-digit code
		return fmt.Errorf("status %s (want %v)", status, p.expected)
	}
	return nil
}

// conn is what an HTTP probe talks over: an *os.File from the raw connect, or a net.Conn.
type conn interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
}

// open connects, with its deadline set.
func (p *httpProbe) open(ctx context.Context, deadline time.Time) (conn, error) {
	if p.ap.IsValid() {
		return p.env.connect(ctx, p.ap, deadline, true)
	}
	dctx, cancel := withDeadline(ctx, deadline)
	defer cancel()
	c, err := p.env.dial(dctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	if !deadline.IsZero() {
		if err := c.SetDeadline(deadline); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	return c, nil
}

// exchange sends the request and reads the answer up to its status line, skipping
// informational (1xx) answers as net/http does, and returns the status ("404 Not Found")
// and its code.
func (p *httpProbe) exchange(rw io.ReadWriter) (status string, code int, err error) {
	if _, err := rw.Write(p.request); err != nil {
		return "", 0, err
	}
	buf := buffers.Get().(*[maxBody]byte) //nolint:forcetypeassert // the pool's only type
	defer buffers.Put(buf)
	n, start := 0, 0
	for {
		if i := bytes.IndexByte(buf[start:n], '\n'); i >= 0 {
			line := buf[start : start+i]
			status, code, err = parseStatusLine(line)
			if err != nil || code >= 200 || code == http.StatusSwitchingProtocols {
				return status, code, err
			}
			// An informational answer: the real one follows its empty line.
			end := bytes.Index(buf[start:n], []byte("\r\n\r\n"))
			if end >= 0 {
				start += end + 4
				continue
			}
		}
		if n == len(buf) {
			return "", 0, errors.New("malformed HTTP response: no status line in the first 4 KiB")
		}
		m, err := rw.Read(buf[n:])
		n += m
		if m == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return "", 0, errors.New("connection closed before an HTTP status line")
			}
			return "", 0, err
		}
	}
}

// parseStatusLine reads "HTTP/1.1 404 Not Found" the way net/http does.
func parseStatusLine(line []byte) (status string, code int, err error) {
	s := strings.TrimSuffix(string(line), "\r")
	proto, status, ok := strings.Cut(s, " ")
	if !ok {
		return "", 0, fmt.Errorf("malformed HTTP response %q", s)
	}
	if _, _, ok := http.ParseHTTPVersion(proto); !ok {
		return "", 0, fmt.Errorf("malformed HTTP version %q", proto)
	}
	status = strings.TrimLeft(status, " ")
	digits, _, _ := strings.Cut(status, " ")
	if len(digits) != 3 {
		return "", 0, fmt.Errorf("malformed HTTP status code %q", digits)
	}
	code, err = strconv.Atoi(digits)
	if err != nil || code < 100 {
		return "", 0, fmt.Errorf("malformed HTTP status code %q", digits)
	}
	return status, code, nil
}

// cause turns a network error into the short cause a person needs.
func cause(ctx context.Context, err error) error {
	var certErr *tls.CertificateVerificationError
	var netErr net.Error
	switch {
	// The socket's own deadline (taken from ctx) may fire a moment before ctx is done.
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return errors.New("timed out")
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused")
	case errors.Is(err, syscall.ECONNRESET):
		return errors.New("connection reset")
	case errors.Is(err, syscall.EHOSTUNREACH):
		return errors.New("host unreachable")
	case errors.Is(err, syscall.ENETUNREACH):
		return errors.New("network unreachable")
	case errors.As(err, &certErr):
		return fmt.Errorf("TLS certificate not trusted: %w", certErr.Err)
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr.Err
	}
	return err
}
