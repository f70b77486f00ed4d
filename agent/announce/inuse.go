package announce

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"

	"vigil.dev/vigil/internal/netnsutil"
)

// InUse asks the link whether another node answers for addr (RFC 5227's probe for IPv4,
// duplicate address detection's Neighbor Solicitation for IPv6) and waits up to wait for
// an answer. An agent that cannot read the VirtualIPs from the API server asks before it
// binds a VIP from what it last knew: a standby may have taken the address over
// meanwhile, and the kernel of a node that holds an address answers for it.
func (r *Raw) InUse(ctx context.Context, ifname string, addr netip.Addr, wait time.Duration) (bool, error) {
	r.mu.Lock()
	ifi, err := r.iface(ifname)
	r.mu.Unlock()
	if err != nil {
		return false, err
	}
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if addr.Is4() {
		return r.arpInUse(ifi, addr, deadline)
	}
	return r.ndpInUse(ifi, addr, deadline)
}

func (r *Raw) arpInUse(ifi *net.Interface, addr netip.Addr, deadline time.Time) (bool, error) {
	var c *arp.Client
	if err := netnsutil.Do(r.ns, func() (err error) { c, err = arp.Dial(ifi); return err }); err != nil {
		return false, fmt.Errorf("opening an ARP socket on %s: %w", ifi.Name, err)
	}
	defer func() { _ = c.Close() }()
	if err := c.SetDeadline(deadline); err != nil {
		return false, err
	}
	// Resolve asks from the interface's own address and reads replies until one comes from
	// addr: whoever answers holds it.
	if _, err := c.Resolve(addr); err != nil {
		if isTimeout(err) {
			return false, nil
		}
		return false, fmt.Errorf("asking who has %s on %s: %w", addr, ifi.Name, err)
	}
	return true, nil
}

func (r *Raw) ndpInUse(ifi *net.Interface, addr netip.Addr, deadline time.Time) (bool, error) {
	var c *ndp.Conn
	if err := netnsutil.Do(r.ns, func() (err error) { c, _, err = ndp.Listen(ifi, ndp.LinkLocal); return err }); err != nil {
		return false, fmt.Errorf("opening an ICMPv6 socket on %s: %w", ifi.Name, err)
	}
	defer func() { _ = c.Close() }()
	group, err := ndp.SolicitedNodeMulticast(addr)
	if err != nil {
		return false, err
	}
	ns := &ndp.NeighborSolicitation{
		TargetAddress: addr,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr}},
	}
	if err := netnsutil.Do(r.ns, func() error { return c.WriteTo(ns, nil, group) }); err != nil {
		return false, fmt.Errorf("asking who has %s on %s: %w", addr, ifi.Name, err)
	}
	if err := c.SetReadDeadline(deadline); err != nil {
		return false, err
	}
	for {
		m, _, _, err := c.ReadFrom()
		if err != nil {
			if isTimeout(err) {
				return false, nil
			}
			return false, fmt.Errorf("waiting for an answer for %s on %s: %w", addr, ifi.Name, err)
		}
		if na, ok := m.(*ndp.NeighborAdvertisement); ok && na.TargetAddress == addr {
			return true, nil
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
