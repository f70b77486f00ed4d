// Package announce tells the neighbours of a node that a VIP now lives there: gratuitous ARP
// (request and reply forms) for IPv4, unsolicited neighbour advertisements with the Override
// flag to all-nodes for IPv6. It needs only CAP_NET_RAW.
package announce

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netns"

	"vigil.dev/vigil/internal/netnsutil"
)

// Announcer announces VIPs.
type Announcer interface {
	// Announce sends count announcements of addr on the interface, interval apart; the
	// first goes out at once. It returns when the burst is sent or ctx is done.
	Announce(ctx context.Context, ifname string, addr netip.Addr, count int, interval time.Duration) error
}

// Stats counts what was sent.
type Stats struct {
	GARPRequests   uint64
	GARPReplies    uint64
	UnsolicitedNAs uint64
	Errors         uint64
}

// Raw is the Announcer on raw sockets, opened per interface in one network namespace.
type Raw struct {
	ns netns.NsHandle

	mu     sync.Mutex
	arps   map[string]*arp.Client
	ndps   map[string]*ndp.Conn
	ifaces map[string]*net.Interface

	garpRequests, garpReplies, nas, errs atomic.Uint64
}

var _ Announcer = (*Raw)(nil)

// NewRaw returns an Announcer whose sockets are opened in ns (netns.None(): the caller's).
func NewRaw(ns netns.NsHandle) *Raw {
	return &Raw{ns: ns, arps: map[string]*arp.Client{}, ndps: map[string]*ndp.Conn{}, ifaces: map[string]*net.Interface{}}
}

// Stats returns the counters.
func (r *Raw) Stats() Stats {
	return Stats{
		GARPRequests: r.garpRequests.Load(), GARPReplies: r.garpReplies.Load(),
		UnsolicitedNAs: r.nas.Load(), Errors: r.errs.Load(),
	}
}

// Close closes every socket.
func (r *Raw) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for name, c := range r.arps {
		errs = append(errs, c.Close())
		delete(r.arps, name)
	}
	for name, c := range r.ndps {
		errs = append(errs, c.Close())
		delete(r.ndps, name)
	}
	return errors.Join(errs...)
}

// Forget closes the sockets of an interface (after it went away or changed).
func (r *Raw) Forget(ifname string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.arps[ifname]; ok {
		_ = c.Close()
		delete(r.arps, ifname)
	}
	if c, ok := r.ndps[ifname]; ok {
		_ = c.Close()
		delete(r.ndps, ifname)
	}
	delete(r.ifaces, ifname)
}

func (r *Raw) iface(ifname string) (*net.Interface, error) {
	if ifi, ok := r.ifaces[ifname]; ok {
		return ifi, nil
	}
	var ifi *net.Interface
	err := netnsutil.Do(r.ns, func() (err error) {
		ifi, err = net.InterfaceByName(ifname)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("interface %s has no Ethernet address to announce", ifname)
	}
	r.ifaces[ifname] = ifi
	return ifi, nil
}

// socketFor returns the interface's cached socket, opening it inside the namespace on
// first use.
func socketFor[T any](r *Raw, cache map[string]T, ifname, what string, open func(*net.Interface) (T, error)) (T, *net.Interface, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var zero T
	ifi, err := r.iface(ifname)
	if err != nil {
		return zero, nil, err
	}
	if c, ok := cache[ifname]; ok {
		return c, ifi, nil
	}
	var c T
	err = netnsutil.Do(r.ns, func() (err error) {
		c, err = open(ifi)
		return err
	})
	if err != nil {
		return zero, nil, fmt.Errorf("opening %s socket on %s: %w", what, ifname, err)
	}
	cache[ifname] = c
	return c, ifi, nil
}

func (r *Raw) arpClient(ifname string) (*arp.Client, *net.Interface, error) {
	return socketFor(r, r.arps, ifname, "ARP", arp.Dial)
}

func (r *Raw) ndpConn(ifname string) (*ndp.Conn, *net.Interface, error) {
	return socketFor(r, r.ndps, ifname, "ICMPv6", func(ifi *net.Interface) (*ndp.Conn, error) {
		c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
		return c, err
	})
}

// Announce sends the burst.
func (r *Raw) Announce(ctx context.Context, ifname string, addr netip.Addr, count int, interval time.Duration) error {
	count = max(count, 1)
	for i := 0; i < count; i++ {
		if err := r.announceOnce(ifname, addr); err != nil {
			r.errs.Add(1)
			r.Forget(ifname) // reopen next time: the interface may have been recreated
			return fmt.Errorf("announcing %s on %s: %w", addr, ifname, err)
		}
		if i == count-1 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
	return nil
}

var allNodes = netip.MustParseAddr("ff02::1")

func (r *Raw) announceOnce(ifname string, addr netip.Addr) error {
	if addr.Is4() {
		c, ifi, err := r.arpClient(ifname)
		if err != nil {
			return err
		}
		// Request form (RFC 5227 announcement): target hardware address zero.
		req, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, addr, make(net.HardwareAddr, 6), addr)
		if err != nil {
			return err
		}
		if err := c.WriteTo(req, ethernet.Broadcast); err != nil {
			return err
		}
		r.garpRequests.Add(1)
		// Reply form, for neighbours that only update their cache from replies.
		rep, err := arp.NewPacket(arp.OperationReply, ifi.HardwareAddr, addr, ethernet.Broadcast, addr)
		if err != nil {
			return err
		}
		if err := c.WriteTo(rep, ethernet.Broadcast); err != nil {
			return err
		}
		r.garpReplies.Add(1)
		return nil
	}
	c, ifi, err := r.ndpConn(ifname)
	if err != nil {
		return err
	}
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: addr,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ifi.HardwareAddr}},
	}
	// The destination's zone is the interface's name, which the kernel call resolves in the
	// calling thread's namespace: send from inside ours.
	if err := netnsutil.Do(r.ns, func() error { return c.WriteTo(na, nil, allNodes) }); err != nil {
		return err
	}
	r.nas.Add(1)
	return nil
}

var (
	sentDesc = prometheus.NewDesc("vigil_announce_sent_total",
		"Announcements sent, by kind: garp_request and garp_reply (IPv4 gratuitous ARP), unsolicited_na (IPv6, Override set).", []string{"kind"}, nil)
	errorsDesc = prometheus.NewDesc("vigil_announce_errors_total",
		"Announcement bursts that failed (the socket could not be opened or written).", nil, nil)
)

// Describe implements prometheus.Collector: Raw exports its own counters.
func (r *Raw) Describe(ch chan<- *prometheus.Desc) {
	ch <- sentDesc
	ch <- errorsDesc
}

// Collect implements prometheus.Collector.
func (r *Raw) Collect(ch chan<- prometheus.Metric) {
	s := r.Stats()
	ch <- prometheus.MustNewConstMetric(sentDesc, prometheus.CounterValue, float64(s.GARPRequests), "garp_request")
	ch <- prometheus.MustNewConstMetric(sentDesc, prometheus.CounterValue, float64(s.GARPReplies), "garp_reply")
	ch <- prometheus.MustNewConstMetric(sentDesc, prometheus.CounterValue, float64(s.UnsolicitedNAs), "unsolicited_na")
	ch <- prometheus.MustNewConstMetric(errorsDesc, prometheus.CounterValue, float64(s.Errors))
}
