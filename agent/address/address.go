// Package address binds and unbinds VIP addresses on node interfaces. Addresses Vigil adds
// carry a protocol marker (IFA_PROTO = Protocol), so Vigil recognises its own addresses
// after a restart and never touches one it did not add.
package address

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Protocol is the IFA_PROTO value of every address Vigil adds ('v'); `ip -d addr` shows it
// as "proto 0x76". Address protocols need Linux 5.18 or later.
const Protocol uint8 = 0x76

// Binding is one VIP on one interface.
type Binding struct {
	Interface string
	Prefix    netip.Prefix // the VIP and the prefix length it is bound with
}

func (b Binding) String() string { return b.Prefix.String() + " on " + b.Interface }

// Address is an address configured on a node interface.
type Address struct {
	Prefix netip.Prefix
	Vigil  bool // added by Vigil (carries Protocol)
}

// Link is a node interface with its addresses.
type Link struct {
	Name  string
	Index int
	Up    bool // administratively up
	// Carrier: the link is up at layer 1 (IFF_LOWER_UP): a VIP on an interface without it
	// cannot answer, so the node is not eligible for it (keepalived's FAULT state).
	Carrier  bool
	Loopback bool
	// HardwareAddr is the link-layer address; a new owner forwards the old owner's
	// connections to it during a planned move (see package handover).
	HardwareAddr net.HardwareAddr
	Addresses    []Address
}

// Manager binds VIPs. Implementations are idempotent: binding a bound VIP and unbinding an
// absent one succeed.
type Manager interface {
	// Bind adds the VIP; an equal address that Vigil did not add is a *ForeignAddressError.
	Bind(b Binding) error
	// Unbind removes the VIP if Vigil added it; it never removes a foreign address.
	Unbind(b Binding) error
	// Renew restarts the kernel lifetime of addresses Vigil holds (see Netlink.Lifetime),
	// adding again any that lapsed: the caller passes only what it holds.
	Renew(bs []Binding) error
	// Bound lists the addresses Vigil holds, on every interface.
	Bound() ([]Binding, error)
	// Links lists the node's interfaces with their addresses.
	Links() ([]Link, error)
}

// ForeignAddressError says the VIP is already configured on the node by someone else
// (typically the node's own IP): Vigil neither takes it over nor removes it.
type ForeignAddressError struct {
	Binding Binding
}

func (e *ForeignAddressError) Error() string {
	return fmt.Sprintf("%s: the address is already configured on this node and was not added by Vigil; leaving it alone", e.Binding)
}

// NoInterfaceError says which interface could not be found for a VIP, and why.
type NoInterfaceError struct {
	VIP       netip.Addr
	Interface string // the requested interface; "" for automatic selection
	Reason    string
	// LinkDown: the interface exists but is down or has no carrier (it may come back).
	LinkDown bool
}

// IsLinkDown reports whether err says that the VIP's interface is down or has no carrier.
func IsLinkDown(err error) bool {
	var e *NoInterfaceError
	return errors.As(err, &e) && e.LinkDown
}

func (e *NoInterfaceError) Error() string {
	if e.Interface != "" {
		return fmt.Sprintf("VIP %s: interface %q: %s", e.VIP, e.Interface, e.Reason)
	}
	return fmt.Sprintf("VIP %s: %s", e.VIP, e.Reason)
}

// IsNoInterface reports whether err is a *NoInterfaceError.
func IsNoInterface(err error) bool {
	var e *NoInterfaceError
	return errors.As(err, &e)
}

// ResolveInterface picks the interface for vip: the requested one if named (it must exist,
// be up and have carrier), else the up, non-loopback interface with the longest configured
// subnet that contains vip — which must have carrier. Host-length addresses and Vigil's own
// addresses do not count as subnets, and the default route is never a fallback: no match
// is a *NoInterfaceError, with LinkDown when the subnet is on a link that is down or has
// no carrier.
func ResolveInterface(links []Link, requested string, vip netip.Addr) (string, error) {
	if requested != "" {
		for _, l := range links {
			if l.Name == requested {
				return l.Name, usable(l, vip)
			}
		}
		return "", &NoInterfaceError{VIP: vip, Interface: requested, Reason: "no such interface on this node"}
	}
	if best := bestLink(links, vip, func(l Link) bool { return l.Up && !l.Loopback }); best != nil {
		return best.Name, usable(*best, vip)
	}
	if down := bestLink(links, vip, func(l Link) bool { return !l.Loopback }); down != nil {
		// Its subnet is on a link that is down: the link may come back.
		return "", usable(*down, vip)
	}
	return "", &NoInterfaceError{VIP: vip, Reason: "no interface on this node has a subnet containing the address; set spec.interface"}
}

// bestLink is the link among those kept whose subnet is the most specific containing vip;
// nil when none has one.
func bestLink(links []Link, vip netip.Addr, keep func(Link) bool) *Link {
	var best *Link
	bestBits := -1
	for i, l := range links {
		if !keep(l) {
			continue
		}
		for _, a := range l.Addresses {
			if a.Vigil || a.Prefix.IsSingleIP() || !a.Prefix.Masked().Contains(vip) {
				continue
			}
			if a.Prefix.Bits() > bestBits {
				best, bestBits = &links[i], a.Prefix.Bits()
			}
		}
	}
	return best
}

// usable says why a VIP cannot answer on link l, nil when it can.
func usable(l Link, vip netip.Addr) error {
	switch {
	case !l.Up:
		return &NoInterfaceError{VIP: vip, Interface: l.Name, Reason: "interface is down", LinkDown: true}
	case !l.Carrier:
		return &NoInterfaceError{VIP: vip, Interface: l.Name, Reason: "interface has no carrier (link down)", LinkDown: true}
	}
	return nil
}
