// Package dataplane makes a node hold exactly the VIPs it owns: it compares the desired set
// with the addresses Vigil holds, applies the minimal changes, and announces what it binds.
package dataplane

import (
	"net/netip"
	"slices"
	"time"

	"vigil.dev/vigil/agent/address"
)

// VIP is one address the node should hold.
type VIP struct {
	Name      string // the VirtualIP's name, for logs and status
	Address   netip.Addr
	PrefixLen int
	Interface string // requested interface; "" selects by subnet
	Announce  Announce
	// Quiet holds the address without announcing it: the node is handing it over and
	// still serves the connections it accepted. Announcing resumes, with a burst, when
	// the VIP stops being quiet.
	Quiet bool
	// Claim identifies this node's claim to the address (its ownership epoch, say): a held
	// VIP whose claim changes is announced again with a burst, so that clients that went
	// to another node in between come back.
	Claim string
}

// Announce is a VIP's announcement policy.
type Announce struct {
	Count    int
	Interval time.Duration
	Refresh  time.Duration // 0 = off
}

// Plan is what Sync will change.
type Plan struct {
	Bind   []Target          // VIPs to bind (or re-bind with another prefix length)
	Unbind []address.Binding // Vigil addresses nobody wants here any more
	Keep   []Target          // VIPs already bound as wanted: adopted, untouched
	Failed map[string]error  // VIP name -> why it cannot be bound on this node
}

// Target is a VIP with the binding it resolves to.
type Target struct {
	VIP     VIP
	Binding address.Binding
}

// MakePlan compares the desired VIPs with the node's links and the addresses Vigil holds.
// It is a pure function: the same inputs give the same plan.
func MakePlan(desired []VIP, links []address.Link, bound []address.Binding) Plan {
	p := Plan{Failed: map[string]error{}}
	wanted := map[netip.Addr]address.Binding{}
	for _, v := range desired {
		ifname, err := address.ResolveInterface(links, v.Interface, v.Address)
		if err != nil {
			p.Failed[v.Name] = err
			continue
		}
		b := address.Binding{Interface: ifname, Prefix: netip.PrefixFrom(v.Address, v.PrefixLen)}
		wanted[v.Address] = b
		t := Target{VIP: v, Binding: b}
		if slices.Contains(bound, b) {
			p.Keep = append(p.Keep, t)
		} else {
			p.Bind = append(p.Bind, t)
		}
	}
	for _, b := range bound {
		w, ok := wanted[b.Prefix.Addr()]
		// Same address on the same interface with another prefix length is re-bound in
		// place by Bind; anything else not wanted here goes.
		if !ok || w.Interface != b.Interface {
			p.Unbind = append(p.Unbind, b)
		}
	}
	return p
}
