package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// KernelSampleInterval is how often the chaos run reads every node's addresses.
const KernelSampleInterval = 100 * time.Millisecond

// kernelObserver reads, every KernelSampleInterval, which of the watched addresses each
// node's kernel holds on an interface that is up: what `ip -o addr show` and
// `ip -o link show` print, asked over netlink.
type kernelObserver = netlinkSampler[KernelSample]

// observeKernel starts sampling the lab's nodes for the addresses.
func (l *Lab) observeKernel(addrs []netip.Addr) (*kernelObserver, error) {
	return startSampling(l.Nodes, KernelSampleInterval, func(nodes []string, handles []*netlink.Handle) KernelSample {
		s := KernelSample{At: time.Now()}
		for i, h := range handles {
			s.Nodes = append(s.Nodes, readNode(h, nodes[i], addrs))
		}
		return s
	})
}

// handleIn opens a netlink socket inside network namespace ns.
func handleIn(ns string) (*netlink.Handle, error) {
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("opening netns %s: %w", ns, err)
	}
	defer func() { _ = nsh.Close() }()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return nil, fmt.Errorf("opening a netlink socket in %s: %w", ns, err)
	}
	return h, nil
}

// readNode reads which watched addresses the node holds on an interface that is up.
func readNode(h *netlink.Handle, node string, watched []netip.Addr) NodeAddrs {
	n := NodeAddrs{Node: node}
	links, err := h.LinkList()
	if err != nil {
		n.Err = err.Error()
		return n
	}
	up := map[int]bool{}
	for _, l := range links {
		a := l.Attrs()
		up[a.Index] = a.Flags&net.FlagUp != 0 && a.Flags&net.FlagLoopback == 0
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if errors.Is(err, netlink.ErrDumpInterrupted) {
		addrs, err = h.AddrList(nil, netlink.FAMILY_ALL) // the addresses changed meanwhile: once more
	}
	if err != nil {
		n.Err = err.Error()
		return n
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && up[a.LinkIndex] && slices.Contains(watched, ip.Unmap()) {
			n.VIPs = append(n.VIPs, ip.Unmap())
		}
	}
	return n
}

// forgetAddrs removes the addresses from every interface of the node: what a reboot does
// to the VIPs a crashed node held (the lab's CrashNode leaves them in place).
func (l *Lab) forgetAddrs(node string, addrs []netip.Addr) error {
	n, err := l.Node(node)
	if err != nil {
		return err
	}
	h, err := handleIn(n.NS)
	if err != nil {
		return err
	}
	defer h.Close()
	bound, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("%s: listing addresses: %w", node, err)
	}
	for _, a := range bound {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !slices.Contains(addrs, ip.Unmap()) {
			continue
		}
		link, err := h.LinkByIndex(a.LinkIndex)
		if err != nil {
			return fmt.Errorf("%s: the link of %s: %w", node, ip, err)
		}
		if err := h.AddrDel(link, &a); err != nil {
			return fmt.Errorf("%s: removing %s: %w", node, ip, err)
		}
	}
	return nil
}
