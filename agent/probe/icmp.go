package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/internal/netnsutil"
)

type icmpProbe struct {
	target string // an IP literal or "gateway"
	t      Target
	env    Env
	id     int
	seq    atomic.Uint32
}

func newICMPProbe(target string, t Target, env Env) (*icmpProbe, error) {
	if target != vigilv1.ICMPTargetGateway {
		if _, err := netip.ParseAddr(target); err != nil {
			return nil, fmt.Errorf("icmp target %q is not an IP address or %q", target, vigilv1.ICMPTargetGateway)
		}
	}
	return &icmpProbe{target: target, t: t, env: env, id: rand.IntN(0xffff)}, nil
}

func (p *icmpProbe) String() string { return "icmp " + p.target }

// resolve returns the address to ping and, for a link-local gateway, its zone.
func (p *icmpProbe) resolve() (netip.Addr, error) {
	if p.target != vigilv1.ICMPTargetGateway {
		return netip.ParseAddr(p.target)
	}
	if p.env.Gateway == nil {
		return netip.Addr{}, errors.New("no gateway resolver")
	}
	gw, err := p.env.Gateway(p.t.Interface, p.t.VIP)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("gateway of %s: %w", p.t.Interface, err)
	}
	return gw, nil
}

// Probe sends one echo request and waits for its reply. It uses an unprivileged ping
// socket where the kernel allows it (net.ipv4.ping_group_range) and a raw socket
// (CAP_NET_RAW) otherwise.
func (p *icmpProbe) Probe(ctx context.Context) error {
	dst, err := p.resolve()
	if err != nil {
		return err
	}
	v6 := dst.Is6()
	conn, privileged, err := p.listen(v6)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	seq := int(p.seq.Add(1) & 0xffff)
	var typ icmp.Type = ipv4.ICMPTypeEcho
	proto := 1
	if v6 {
		typ, proto = ipv6.ICMPTypeEchoRequest, 58
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: p.id, Seq: seq, Data: []byte("vigil")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return err
	}
	var addr net.Addr = &net.UDPAddr{IP: dst.AsSlice(), Zone: p.zone(dst)}
	if privileged {
		addr = &net.IPAddr{IP: dst.AsSlice(), Zone: p.zone(dst)}
	}
	if _, err := conn.WriteTo(b, addr); err != nil {
		return fmt.Errorf("sending echo request to %s: %w", dst, err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
				return fmt.Errorf("no echo reply from %s: timed out", dst)
			}
			return fmt.Errorf("waiting for echo reply from %s: %w", dst, err)
		}
		reply, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue
		}
		echo, ok := reply.Body.(*icmp.Echo)
		if !ok || echo.Seq != seq || !sameIP(from, dst) {
			continue
		}
		// A ping socket's kernel sets the ID; a raw socket sees everyone's replies.
		if privileged && echo.ID != p.id {
			continue
		}
		switch reply.Type {
		case ipv4.ICMPTypeEchoReply, ipv6.ICMPTypeEchoReply:
			return nil
		}
	}
}

// zone is the interface index for a link-local target (an IPv6 gateway usually is). A
// numeric zone needs no name lookup, which would happen in the calling thread's namespace.
func (p *icmpProbe) zone(dst netip.Addr) string {
	if !dst.IsLinkLocalUnicast() || p.t.Interface == "" {
		return ""
	}
	var idx int
	_ = netnsutil.Do(p.env.NS, func() error {
		ifi, err := net.InterfaceByName(p.t.Interface)
		if err == nil {
			idx = ifi.Index
		}
		return err
	})
	if idx == 0 {
		return ""
	}
	return strconv.Itoa(idx)
}

func sameIP(from net.Addr, dst netip.Addr) bool {
	var ip net.IP
	switch a := from.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	}
	got, ok := netip.AddrFromSlice(ip)
	return ok && got.Unmap() == dst.WithZone("")
}

func (p *icmpProbe) listen(v6 bool) (conn *icmp.PacketConn, privileged bool, err error) {
	network, raw, addr := "udp4", "ip4:icmp", "0.0.0.0"
	if v6 {
		network, raw, addr = "udp6", "ip6:ipv6-icmp", "::"
	}
	err = netnsutil.Do(p.env.NS, func() error {
		var e error
		if conn, e = icmp.ListenPacket(network, addr); e == nil {
			return nil
		}
		privileged = true
		conn, e = icmp.ListenPacket(raw, addr)
		return e
	})
	if err != nil {
		return nil, false, fmt.Errorf("opening ICMP socket (unprivileged ping not allowed and no CAP_NET_RAW?): %w", err)
	}
	return conn, privileged, nil
}
