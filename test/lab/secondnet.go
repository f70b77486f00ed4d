package lab

import (
	"fmt"
	"net/netip"
)

// The second network (Config.SecondNetwork) is a second L2 segment beside the node
// network, as a storage or ingress VLAN would be: bridge br1 in the bridge namespace and
// an eth1 in every node and in the client, on 198.19.0.0/24 and fd00:199:19::/64. Members
// keep the host numbers they have on the first network (node-a .11, client .3). It has no
// gateway and no route to the first network, so a VIP on it is reached over eth1 only, and
// the control plane (API server, memberlist) keeps using eth0 whatever happens to eth1.
var (
	secondPrefixV4 = netip.MustParsePrefix("198.19.0.0/24")
	secondPrefixV6 = netip.MustParsePrefix("fd00:199:19::/64")
)

const (
	// SecondInterface is every member's interface on the second network.
	SecondInterface = "eth1"

	secondBridgeName = "br1"
	// secondPortSuffix names a member's port on br1: "node-a-eth1" (br0's is "node-a").
	secondPortSuffix = "-" + SecondInterface
)

// SecondVIPv4 is the i-th VIP address on the second network (i from 0): 198.19.0.100 + i.
func SecondVIPv4(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 19, 0, byte(100 + i)}) }

// SecondVIPv6 is the i-th IPv6 VIP address on the second network: fd00:199:19::100 + i.
func SecondVIPv6(i int) netip.Addr { return hostAddr(secondPrefixV6, 0x100+i) }

// buildSecondNetwork makes br1 and puts the members on it.
func (l *Lab) buildSecondNetwork(members []*Member) error {
	br := l.BridgeNS
	cmds := [][]string{
		{"-n", br, "link", "add", secondBridgeName, "type", "bridge", "stp_state", "0", "mcast_snooping", "0"},
		{"-n", br, "link", "set", secondBridgeName, "up"},
	}
	for _, c := range cmds {
		if _, err := ip(c...); err != nil {
			return err
		}
	}
	for _, m := range members {
		host := m.IPv4.As4()[3] // the member's host number on the first network
		m.SecondIPv4 = hostAddr(secondPrefixV4, int(host))
		m.SecondIPv6 = hostAddr(secondPrefixV6, int(m.IPv6.As16()[15]))
		if err := l.addSecondMember(m); err != nil {
			return err
		}
	}
	return nil
}

// addSecondMember gives the member its eth1 on br1, made as addMember makes eth0: inside
// the bridge namespace, the peer placed straight into the member's.
func (l *Lab) addSecondMember(m *Member) error {
	br, port := l.BridgeNS, m.Name+secondPortSuffix
	cmds := [][]string{
		{"-n", br, "link", "add", port, "type", "veth", "peer", "name", SecondInterface, "netns", m.NS},
		{"-n", br, "link", "set", port, "master", secondBridgeName, "up"},
		{"-n", m.NS, "addr", "add", netip.PrefixFrom(m.SecondIPv4, secondPrefixV4.Bits()).String(), "dev", SecondInterface},
		{"-n", m.NS, "addr", "add", netip.PrefixFrom(m.SecondIPv6, secondPrefixV6.Bits()).String(), "dev", SecondInterface, "nodad"},
		{"-n", m.NS, "link", "set", SecondInterface, "up"},
	}
	for _, c := range cmds {
		if _, err := ip(c...); err != nil {
			return err
		}
	}
	return nil
}

// HasSecondNetwork reports whether the lab was built with Config.SecondNetwork.
func (l *Lab) HasSecondNetwork() bool { return l.secondNetwork }

// bridgePort names the bridge-side veth of a member's interface (eth0, or eth1 on the
// second network).
func (l *Lab) bridgePort(member, iface string) (string, error) {
	m, err := l.member(member)
	if err != nil {
		return "", err
	}
	switch {
	case iface == NodeInterface:
		return m.Name, nil
	case iface == SecondInterface && l.secondNetwork && m.SecondIPv4.IsValid():
		return m.Name + secondPortSuffix, nil
	}
	return "", fmt.Errorf("%s has no lab interface %q", member, iface)
}

// SetCarrier takes the carrier of a member's interface (eth0, or eth1 on the second
// network) away or gives it back, by setting the bridge-side end of its veth down or up:
// the member's interface stays administratively up, with its addresses and routes, but
// shows NO-CARRIER — a pulled cable or a dead switch port, as the node's kernel sees it.
// Only that interface is cut: with eth1, the API server and the peers stay reachable.
func (l *Lab) SetCarrier(member, iface string, up bool) error {
	port, err := l.bridgePort(member, iface)
	if err != nil {
		return err
	}
	_, err = ip("-n", l.BridgeNS, "link", "set", port, map[bool]string{true: "up", false: "down"}[up])
	return err
}
