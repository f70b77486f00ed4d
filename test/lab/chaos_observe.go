package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// KernelSampleInterval is how often the chaos run reads every node's addresses.
const KernelSampleInterval = 100 * time.Millisecond

// kernelObserver reads, every KernelSampleInterval, which of the watched addresses each
// node's kernel holds on an interface that is up: what `ip -o addr show` and
// `ip -o link show` print, asked over netlink sockets opened once inside each node's
// namespace, so that sampling forks nothing and stays on time when the CPU is starved.
type kernelObserver struct {
	nodes   []string
	handles []*netlink.Handle
	watched []netip.Addr

	mu      sync.Mutex
	samples []KernelSample
	stop    chan struct{}
	done    chan struct{}
}

// observeKernel starts sampling the lab's nodes for the addresses.
func (l *Lab) observeKernel(addrs []netip.Addr) (*kernelObserver, error) {
	o := &kernelObserver{watched: addrs, stop: make(chan struct{}), done: make(chan struct{})}
	for _, n := range l.Nodes {
		h, err := handleIn(n.NS)
		if err != nil {
			o.closeHandles()
			return nil, err
		}
		o.nodes = append(o.nodes, n.Name)
		o.handles = append(o.handles, h)
	}
	go o.run()
	return o, nil
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

func (o *kernelObserver) run() {
	defer close(o.done)
	t := time.NewTicker(KernelSampleInterval)
	defer t.Stop()
	for {
		s := KernelSample{At: time.Now()}
		for i, h := range o.handles {
			s.Nodes = append(s.Nodes, readNode(h, o.nodes[i], o.watched))
		}
		o.mu.Lock()
		o.samples = append(o.samples, s)
		o.mu.Unlock()
		select {
		case <-o.stop:
			return
		case <-t.C:
		}
	}
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

// latest returns the newest sample (zero before the first).
func (o *kernelObserver) latest() KernelSample {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.samples) == 0 {
		return KernelSample{}
	}
	return o.samples[len(o.samples)-1]
}

// Stop ends the sampling and returns every sample.
func (o *kernelObserver) Stop() []KernelSample {
	select {
	case <-o.stop:
	default:
		close(o.stop)
	}
	<-o.done
	o.closeHandles()
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.samples
}

func (o *kernelObserver) closeHandles() {
	for _, h := range o.handles {
		h.Close()
	}
	o.handles = nil
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
