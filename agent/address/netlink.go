package address

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ifaProto is IFA_PROTO (Linux 5.18), not yet in x/sys/unix.
const ifaProto = 11

// Netlink is the Manager of a network namespace, on rtnetlink. Its sockets are opened in
// that namespace when it is made, so every call acts there whichever thread runs it.
type Netlink struct {
	ns     netns.NsHandle
	sock   *nl.SocketHandle
	handle *netlink.Handle
	// Lifetime is the kernel lifetime of the addresses Vigil adds (0: forever). The kernel
	// removes an address by itself once its lifetime runs out, so a live agent renews its
	// addresses (Renew) and a dead one cannot keep them: a dead man's switch. The kernel
	// counts in whole seconds: an address outlives its last renewal by about Lifetime
	// (measured 1.0-1.05 s for 1 s, TestLifetimeIsADeadMansSwitch).
	Lifetime time.Duration
}

var _ Manager = (*Netlink)(nil)

// NewNetlink opens a Manager for namespace ns; netns.None() is the calling process's own.
func NewNetlink(ns netns.NsHandle) (*Netlink, error) {
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening rtnetlink socket: %w", err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("opening rtnetlink handle: %w", err)
	}
	return &Netlink{ns: ns, sock: &nl.SocketHandle{Socket: s}, handle: h}, nil
}

// Close releases the sockets.
func (m *Netlink) Close() {
	m.sock.Close()
	m.handle.Close()
}

func (m *Netlink) request(msgType, flags int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(msgType, flags)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: m.sock}
	return req
}

// Links lists the interfaces and all their addresses, marking Vigil's.
func (m *Netlink) Links() ([]Link, error) {
	links, err := m.handle.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	byIndex := map[int]*Link{}
	out := make([]Link, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		out = append(out, Link{
			Name:     a.Name,
			Index:    a.Index,
			Up:       a.Flags&unix.IFF_UP != 0,
			Carrier:  a.RawFlags&unix.IFF_LOWER_UP != 0,
			Loopback: a.Flags&unix.IFF_LOOPBACK != 0,

			HardwareAddr: a.HardwareAddr,
		})
	}
	for i := range out {
		byIndex[out[i].Index] = &out[i]
	}
	addrs, err := m.dumpAddresses()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if l, ok := byIndex[a.index]; ok {
			l.Addresses = append(l.Addresses, Address{Prefix: a.prefix, Vigil: a.proto == Protocol})
		}
	}
	return out, nil
}

type rawAddr struct {
	index  int
	prefix netip.Prefix
	proto  uint8
}

func (m *Netlink) dumpAddresses() ([]rawAddr, error) {
	req := m.request(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfAddrmsg(unix.AF_UNSPEC))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWADDR)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	var out []rawAddr
	for _, msg := range msgs {
		if len(msg) < unix.SizeofIfAddrmsg {
			continue
		}
		hdr := nl.DeserializeIfAddrmsg(msg)
		attrs, err := nl.ParseRouteAttr(msg[unix.SizeofIfAddrmsg:])
		if err != nil {
			return nil, fmt.Errorf("parsing address message: %w", err)
		}
		a := rawAddr{index: int(hdr.Index)}
		var local, address []byte
		for _, attr := range attrs {
			switch attr.Attr.Type {
			case unix.IFA_LOCAL:
				local = attr.Value
			case unix.IFA_ADDRESS:
				address = attr.Value
			case ifaProto:
				if len(attr.Value) == 1 {
					a.proto = attr.Value[0]
				}
			}
		}
		// For IPv4, IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on
		// point-to-point links); IPv6 has only IFA_ADDRESS.
		ipBytes := address
		if local != nil {
			ipBytes = local
		}
		ip, ok := netip.AddrFromSlice(ipBytes)
		if !ok {
			continue
		}
		a.prefix = netip.PrefixFrom(ip.Unmap(), int(hdr.Prefixlen))
		out = append(out, a)
	}
	return out, nil
}

// Bound lists the addresses Vigil holds.
func (m *Netlink) Bound() ([]Binding, error) {
	links, err := m.Links()
	if err != nil {
		return nil, err
	}
	var out []Binding
	for _, l := range links {
		for _, a := range l.Addresses {
			if a.Vigil {
				out = append(out, Binding{Interface: l.Name, Prefix: a.Prefix})
			}
		}
	}
	return out, nil
}

// find returns the link and the address equal to b's address on it, if any.
func (m *Netlink) find(b Binding) (Link, *Address, error) {
	links, err := m.Links()
	if err != nil {
		return Link{}, nil, fmt.Errorf("%s: %w", b, err)
	}
	for _, l := range links {
		if l.Name != b.Interface {
			continue
		}
		for _, a := range l.Addresses {
			if a.Prefix.Addr() == b.Prefix.Addr() {
				return l, &a, nil
			}
		}
		return l, nil, nil
	}
	return Link{}, nil, &NoInterfaceError{VIP: b.Prefix.Addr(), Interface: b.Interface, Reason: "no such interface on this node"}
}

// Bind adds the VIP with Vigil's marker. IPv6 VIPs are added without duplicate address
// detection (usable at once) and with a preferred lifetime of 0, so the kernel never picks
// them as the source of the node's own outgoing traffic. An IPv4 VIP is never preferred
// as a source either: the kernel chooses the address of the subnet a route points into.
func (m *Netlink) Bind(b Binding) error {
	link, existing, err := m.find(b)
	if err != nil {
		return err
	}
	if existing != nil {
		switch {
		case !existing.Vigil:
			return &ForeignAddressError{Binding: b}
		case existing.Prefix.Bits() == b.Prefix.Bits():
			return nil
		}
		// Vigil's, with another prefix length: replace it.
		if err := m.change(unix.RTM_DELADDR, 0, link.Index, existing.Prefix); err != nil {
			return fmt.Errorf("%s: removing it to change the prefix length: %w", b, err)
		}
	}
	if err := m.change(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, link.Index, b.Prefix); err != nil {
		return fmt.Errorf("binding %s: %w", b, err)
	}
	// A kernel older than 5.18 drops IFA_PROTO silently; an unmarked address would later be
	// taken for a foreign one and leak, so refuse to run there.
	if _, added, err := m.find(b); err == nil && added != nil && !added.Vigil {
		_ = m.change(unix.RTM_DELADDR, 0, link.Index, b.Prefix)
		return fmt.Errorf("binding %s: the kernel does not keep the address protocol marker (Vigil needs Linux 5.18 or later)", b)
	}
	return nil
}

// Renew restarts the lifetime of the given addresses, which the caller holds: one
// rtnetlink request each, no dump (renewals run four times a second, and a busy node must
// get them done in time). An address that lapsed or was removed by hand is added again:
// the caller wants it held. The caller must never pass one it released.
func (m *Netlink) Renew(bs []Binding) error {
	if m.Lifetime == 0 || len(bs) == 0 {
		return nil
	}
	indexes := map[string]int{}
	var errs []error
	for _, b := range bs {
		index, ok := indexes[b.Interface]
		if !ok {
			link, err := m.handle.LinkByName(b.Interface)
			if err != nil {
				errs = append(errs, fmt.Errorf("renewing %s: %w", b, err))
				continue
			}
			index = link.Attrs().Index
			indexes[b.Interface] = index
		}
		if err := m.change(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, index, b.Prefix); err != nil {
			errs = append(errs, fmt.Errorf("renewing %s: %w", b, err))
		}
	}
	return errors.Join(errs...)
}

// Unbind removes the VIP if Vigil added it.
func (m *Netlink) Unbind(b Binding) error {
	link, existing, err := m.find(b)
	if err != nil {
		if IsNoInterface(err) {
			return nil // the interface is gone, and the address with it
		}
		return err
	}
	if existing == nil {
		return nil
	}
	if !existing.Vigil {
		return &ForeignAddressError{Binding: b}
	}
	if err := m.change(unix.RTM_DELADDR, 0, link.Index, existing.Prefix); err != nil {
		return fmt.Errorf("unbinding %s: %w", b, err)
	}
	return nil
}

func (m *Netlink) change(msgType, flags, index int, p netip.Prefix) error {
	family := unix.AF_INET
	if p.Addr().Is6() {
		family = unix.AF_INET6
	}
	req := m.request(msgType, flags|unix.NLM_F_ACK)
	msg := nl.NewIfAddrmsg(family)
	msg.Index = uint32(index)
	msg.Prefixlen = uint8(p.Bits())
	msg.Scope = unix.RT_SCOPE_UNIVERSE
	req.AddData(msg)
	ip := p.Addr().AsSlice()
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, ip))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, ip))
	if msgType == unix.RTM_NEWADDR {
		req.AddData(nl.NewRtAttr(unix.IFA_FLAGS, addrFlags(p)))
		cache := m.lifetimes(p)
		req.AddData(nl.NewRtAttr(unix.IFA_CACHEINFO, cache.Serialize()))
		req.AddData(nl.NewRtAttr(ifaProto, []byte{Protocol}))
	}
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("address appeared concurrently: %w", err)
	}
	return err
}

// addrFlags are the IFA_FLAGS of a VIP. IPv6: no duplicate address detection (a VIP must
// answer at once, and its owner is elected, not probed for). Both families: no prefix
// route for a host-length VIP (/32, /128): the node reaches the subnet through its own
// address already, and a VIP that comes and goes must not move the node's routes. A shorter
// prefix length is a request for the subnet's route, and gets it.
func addrFlags(p netip.Prefix) []byte {
	var flags uint32
	if p.Addr().Is6() {
		flags |= unix.IFA_F_NODAD
	}
	if p.IsSingleIP() {
		flags |= unix.IFA_F_NOPREFIXROUTE
	}
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, flags)
	return b
}

// lifetimes are a VIP's valid and preferred lifetimes, in whole seconds (forever: all
// ones). An IPv6 VIP is never preferred (lifetime 0), so the kernel does not pick it as
// the source of the node's own traffic.
func (m *Netlink) lifetimes(p netip.Prefix) nl.IfaCacheInfo {
	valid := uint32(0xffffffff)
	if m.Lifetime > 0 {
		valid = uint32(max((m.Lifetime+time.Second-1)/time.Second, 1))
	}
	preferred := valid
	if p.Addr().Is6() {
		preferred = 0
	}
	return nl.IfaCacheInfo{IfaCacheinfo: unix.IfaCacheinfo{Valid: valid, Prefered: preferred}} //nolint:misspell // x/sys/unix spells the field so
}

// Watch calls onChange whenever a link changes (up, down, carrier) or an address is
// removed, until ctx is done: the agent then looks at once instead of at its next resync
// (a lost carrier makes the node ineligible; a VIP removed by hand is put back). Address
// additions are not reported: the agent's own lifetime renewals would wake it four times
// a second.
func (m *Netlink) Watch(ctx context.Context, onChange func()) error {
	links := make(chan netlink.LinkUpdate, 16)
	addrs := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	if err := netlink.LinkSubscribeAt(m.ns, links, done); err != nil {
		close(done)
		return fmt.Errorf("watching links: %w", err)
	}
	if err := netlink.AddrSubscribeAt(m.ns, addrs, done); err != nil {
		close(done)
		return fmt.Errorf("watching addresses: %w", err)
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-links:
				if !ok {
					return
				}
				onChange()
			case u, ok := <-addrs:
				if !ok {
					return
				}
				if !u.NewAddr {
					onChange()
				}
			}
		}
	}()
	return nil
}

// DefaultGateways lists the gateways of the node's default routes (main table, both
// families): a VIP must never take one of these addresses over.
func (m *Netlink) DefaultGateways() ([]netip.Addr, error) {
	var out []netip.Addr
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := m.handle.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("listing routes: %w", err)
		}
		for _, r := range routes {
			if ones, _ := routeBits(r); ones != 0 || r.Gw == nil {
				continue
			}
			if gw, ok := netip.AddrFromSlice(r.Gw); ok && !slices.Contains(out, gw.Unmap()) {
				out = append(out, gw.Unmap())
			}
		}
	}
	return out, nil
}

// routeBits is the prefix length of a route's destination (a default route has none, or 0).
func routeBits(r netlink.Route) (int, int) {
	if r.Dst == nil {
		return 0, 0
	}
	return r.Dst.Mask.Size()
}
