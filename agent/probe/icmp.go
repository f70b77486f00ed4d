package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/netnsutil"
)

// pingers are the shared ICMP sockets of a Manager.
type pingers struct {
	v4, v6 *pinger
}

func newPingers(ns netns.NsHandle) *pingers {
	return &pingers{v4: newPinger(ns, false), v6: newPinger(ns, true)}
}

func (p *pingers) close() {
	p.v4.close()
	p.v6.close()
}

// gatewayTTL is how long a resolved gateway (and interface index) is reused: routes change
// rarely, and a netlink dump per probe would cost more than the probe.
const gatewayTTL = 10 * time.Second

type icmpProbe struct {
	target string // an IP literal or "gateway"
	t      Target
	env    Env

	mu       sync.Mutex
	dst      netip.Addr
	zone     string
	resolved time.Time
}

func newICMPProbe(target string, t Target, env Env) (*icmpProbe, error) {
	p := &icmpProbe{target: target, t: t, env: env}
	if target != vigilv1.ICMPTargetGateway {
		dst, err := netip.ParseAddr(target)
		if err != nil {
			return nil, fmt.Errorf("icmp target %q is not an IP address or %q", target, vigilv1.ICMPTargetGateway)
		}
		p.dst = dst
	}
	return p, nil
}

func (p *icmpProbe) String() string { return "icmp " + p.target }

// resolve returns the address to ping and, when it is link-local (an IPv6 gateway usually
// is), the interface index as its zone: a numeric zone needs no name lookup, which would
// happen in the calling thread's namespace.
func (p *icmpProbe) resolve() (netip.Addr, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.target == vigilv1.ICMPTargetGateway && time.Since(p.resolved) > gatewayTTL {
		if p.env.Gateway == nil {
			return netip.Addr{}, "", errors.New("no gateway resolver")
		}
		gw, err := p.env.Gateway(p.t.Interface, p.t.VIP)
		if err != nil {
			return netip.Addr{}, "", fmt.Errorf("gateway of %s: %w", p.t.Interface, err)
		}
		p.dst, p.zone, p.resolved = gw, "", time.Now()
		if gw.IsLinkLocalUnicast() && p.t.Interface != "" {
			_ = netnsutil.Do(p.env.NS, func() error {
				ifi, err := net.InterfaceByName(p.t.Interface)
				if err == nil {
					p.zone = strconv.Itoa(ifi.Index)
				}
				return err
			})
		}
	}
	return p.dst, p.zone, nil
}

// Probe sends one echo request and waits for its reply, on the Manager's shared socket, or
// on a socket of its own when used without a Manager.
func (p *icmpProbe) Probe(ctx context.Context) error {
	deadline, _ := ctx.Deadline()
	return p.probe(ctx, deadline)
}

func (p *icmpProbe) probe(ctx context.Context, deadline time.Time) error {
	dst, zone, err := p.resolve()
	if err != nil {
		return err
	}
	shared := p.env.pingers
	if shared == nil {
		own := newPinger(p.env.NS, dst.Is6())
		defer own.close()
		return own.ping(ctx, deadline, dst, zone)
	}
	if dst.Is6() {
		return shared.v6.ping(ctx, deadline, dst, zone)
	}
	return shared.v4.ping(ctx, deadline, dst, zone)
}
