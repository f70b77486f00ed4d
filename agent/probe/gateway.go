package probe

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetlinkGateway returns a resolver of "gateway" in namespace ns: the gateway of the default
// route through the interface, in the VIP's address family.
func NetlinkGateway(ns netns.NsHandle) (func(ifname string, vip netip.Addr) (netip.Addr, error), error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening rtnetlink handle: %w", err)
	}
	return func(ifname string, vip netip.Addr) (netip.Addr, error) {
		link, err := h.LinkByName(ifname)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("interface %s: %w", ifname, err)
		}
		family := netlink.FAMILY_V4
		if vip.Is6() {
			family = netlink.FAMILY_V6
		}
		routes, err := h.RouteListFiltered(family, &netlink.Route{LinkIndex: link.Attrs().Index, Table: unix.RT_TABLE_MAIN},
			netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("listing routes of %s: %w", ifname, err)
		}
		for _, r := range routes {
			if (r.Dst == nil || isDefault(r.Dst.String())) && r.Gw != nil {
				if gw, ok := netip.AddrFromSlice(r.Gw); ok {
					return gw.Unmap(), nil
				}
			}
		}
		return netip.Addr{}, fmt.Errorf("no default route with a gateway through %s", ifname)
	}, nil
}

func isDefault(dst string) bool { return dst == "0.0.0.0/0" || dst == "::/0" }
