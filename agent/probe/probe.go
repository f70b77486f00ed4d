// Package probe runs a VirtualIP's health checks on a node — ICMP echo, TCP connect,
// HTTP(S) GET — with keepalived's fall/rise hysteresis, and reports only transitions.
package probe

import (
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
	"syscall"

	"github.com/vishvananda/netns"

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

// New builds the prober for one health check.
func New(c vigilv1.HealthCheck, t Target, env Env) (Prober, error) {
	switch {
	case c.TCP != nil:
		return &tcpProbe{addr: net.JoinHostPort(c.TCP.Host, strconv.Itoa(int(c.TCP.Port))), env: env}, nil
	case c.HTTP != nil:
		return newHTTPProbe(c.HTTP, env), nil
	case c.ICMP != nil:
		return newICMPProbe(c.ICMP.Target, t, env)
	}
	return nil, fmt.Errorf("health check %q has no icmp, tcp or http", c.Name)
}

// dial opens a connection from inside the environment's namespace.
func (env Env) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := netnsutil.Do(env.NS, func() (err error) {
		conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

type tcpProbe struct {
	addr string
	env  Env
}

func (p *tcpProbe) String() string { return "tcp " + p.addr }

func (p *tcpProbe) Probe(ctx context.Context) error {
	conn, err := p.env.dial(ctx, "tcp", p.addr)
	if err != nil {
		return cause(ctx, err)
	}
	return conn.Close()
}

// maxBody bounds what is read of an HTTP answer: enough to finish a small response.
const maxBody = 4 << 10

type httpProbe struct {
	url      string
	host     string
	expected []int32
	client   *http.Client
}

func newHTTPProbe(h *vigilv1.HTTPCheck, env Env) *httpProbe {
	scheme := "http"
	if h.Scheme == vigilv1.HTTPSchemeHTTPS {
		scheme = "https"
	}
	path := h.Path
	if path == "" {
		path = "/"
	}
	serverName := h.Host
	if h.HostHeader != "" {
		serverName, _, _ = strings.Cut(h.HostHeader, ":")
	}
	return &httpProbe{
		url:      fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(h.Host, strconv.Itoa(int(h.Port))), path),
		host:     h.HostHeader,
		expected: h.ExpectedStatuses,
		client: &http.Client{
			// A fresh connection per probe: a kept-alive connection to a dead backend (or
			// one behind a load balancer) could hide that new connections fail.
			Transport: &http.Transport{
				DialContext:       env.dial,
				DisableKeepAlives: true,
				TLSClientConfig: &tls.Config{
					ServerName:         serverName,
					RootCAs:            env.RootCAs,
					InsecureSkipVerify: h.InsecureSkipVerify, //nolint:gosec // the user's explicit choice, off by default
				},
			},
			// Redirects are answers: a 301 is judged by expectedStatuses, not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

func (p *httpProbe) String() string { return "http " + p.url }

func (p *httpProbe) Probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return err
	}
	if p.host != "" {
		req.Host = p.host
	}
	req.Header.Set("User-Agent", "vigil-health-check")
	resp, err := p.client.Do(req)
	if err != nil {
		return cause(ctx, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	if len(p.expected) == 0 {
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("status %s (want 2xx)", resp.Status)
		}
		return nil
	}
	if !slices.Contains(p.expected, int32(resp.StatusCode)) {
		return fmt.Errorf("status %s (want %v)", resp.Status, p.expected)
	}
	return nil
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
