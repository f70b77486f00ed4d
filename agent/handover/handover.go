// Package handover keeps a planned move of a VIP from breaking the connections the old
// owner is still serving.
//
// A move switches the client's neighbour entry for the VIP to the new owner in one instant
// (its gratuitous ARP or unsolicited NA). A TCP connection the old owner accepted just before
// that instant then sends its remaining segments to the new owner, whose kernel knows no
// such connection and answers with a reset: a failed request, although nothing failed.
// So for a short window after it takes the address, the new owner forwards at layer 2 every
// TCP segment for the VIP that does not belong to a connection it saw open itself (a SYN
// that reached it) to the old owner, which keeps the address bound, silently, while it
// drains. New connections are the new owner's from the first SYN.
package handover

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Rule forwards the old owner's connections to a VIP bound on Interface.
type Rule struct {
	// Interface holds the VIP on this node.
	Interface string
	// VIP is the address whose connections are forwarded.
	VIP netip.Addr
	// To is the old owner's link-layer address on the same link.
	To net.HardwareAddr
	// Window is how long this node remembers a connection it saw open; a rule is meant to
	// live no longer than that.
	Window time.Duration
}

func (r Rule) String() string {
	return fmt.Sprintf("%s on %s -> %s", r.VIP, r.Interface, r.To)
}

func (r Rule) equal(o Rule) bool {
	return r.Interface == o.Interface && r.VIP == o.VIP && r.To.String() == o.To.String() && r.Window == o.Window
}

// Forwarder installs forwarding rules. Implementations are idempotent.
type Forwarder interface {
	// Sync installs exactly rules (at most one per VIP); a rule kept from the previous
	// call keeps the connections it has learnt.
	Sync(rules []Rule) error
	// Reset removes every rule, also those a previous run of the agent left behind.
	Reset() error
}
