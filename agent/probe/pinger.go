package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"vigil.dev/vigil/internal/netnsutil"
)

// pinger is one ICMP socket per address family shared by every ICMP check: one reader
// hands each echo reply to the probe waiting for its sequence number. A socket per probe
// would cost a socket and a close per probe, and every raw socket sees every reply.
type pinger struct {
	ns netns.NsHandle
	v6 bool

	mu         sync.Mutex
	conn       *icmp.PacketConn
	privileged bool // raw socket (CAP_NET_RAW) rather than an unprivileged ping socket
	id         int
	seq        uint16
	waiting    map[uint16]*pending
	done       chan struct{}
}

type pending struct {
	dst   netip.Addr
	reply chan struct{}
}

func newPinger(ns netns.NsHandle, v6 bool) *pinger {
	return &pinger{ns: ns, v6: v6, id: rand.IntN(0xffff), waiting: map[uint16]*pending{}}
}

// open opens the socket on first use: an unprivileged ping socket where the kernel allows
// it (net.ipv4.ping_group_range), a raw socket otherwise. p.mu is held.
func (p *pinger) open() error {
	if p.conn != nil {
		return nil
	}
	network, raw, addr := "udp4", "ip4:icmp", "0.0.0.0"
	if p.v6 {
		network, raw, addr = "udp6", "ip6:ipv6-icmp", "::"
	}
	var privileged bool
	var conn *icmp.PacketConn
	err := netnsutil.Do(p.ns, func() error {
		var e error
		if conn, e = icmp.ListenPacket(network, addr); e == nil {
			return nil
		}
		privileged = true
		conn, e = icmp.ListenPacket(raw, addr)
		return e
	})
	if err != nil {
		return fmt.Errorf("opening ICMP socket (unprivileged ping not allowed and no CAP_NET_RAW?): %w", err)
	}
	p.conn, p.privileged, p.done = conn, privileged, make(chan struct{})
	go p.read(conn, p.done)
	return nil
}

func (p *pinger) read(conn *icmp.PacketConn, done chan struct{}) {
	defer close(done)
	proto := 1
	if p.v6 {
		proto = 58
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		msg, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || (msg.Type != ipv4.ICMPTypeEchoReply && msg.Type != ipv6.ICMPTypeEchoReply) {
			continue
		}
		echo, ok := msg.Body.(*icmp.Echo)
		if !ok {
			continue
		}
		p.mu.Lock()
		w, ok := p.waiting[uint16(echo.Seq)]
		// On a raw socket everyone's replies arrive: the ID tells ours apart. A ping
		// socket's kernel sets the ID and delivers only ours.
		if ok && (!p.privileged || echo.ID == p.id) && sameIP(from, w.dst) {
			delete(p.waiting, uint16(echo.Seq))
			close(w.reply)
		}
		p.mu.Unlock()
	}
}

// ping sends one echo request to dst and waits for the reply or ctx.
func (p *pinger) ping(ctx context.Context, dst netip.Addr, zone string) error {
	p.mu.Lock()
	if err := p.open(); err != nil {
		p.mu.Unlock()
		return err
	}
	p.seq++
	for p.waiting[p.seq] != nil { // wrapped onto a probe still waiting
		p.seq++
	}
	seq := p.seq
	w := &pending{dst: dst.WithZone(""), reply: make(chan struct{})}
	p.waiting[seq] = w
	conn, privileged := p.conn, p.privileged
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		if p.waiting[seq] == w {
			delete(p.waiting, seq)
		}
		p.mu.Unlock()
	}()

	var typ icmp.Type = ipv4.ICMPTypeEcho
	if p.v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	b, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: p.id, Seq: int(seq), Data: []byte("vigil")}}).Marshal(nil)
	if err != nil {
		return err
	}
	var addr net.Addr = &net.UDPAddr{IP: dst.AsSlice(), Zone: zone}
	if privileged {
		addr = &net.IPAddr{IP: dst.AsSlice(), Zone: zone}
	}
	if _, err := conn.WriteTo(b, addr); err != nil {
		return fmt.Errorf("sending echo request to %s: %w", dst, err)
	}
	select {
	case <-w.reply:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no echo reply from %s: timed out", dst)
	}
}

// close closes the socket and waits for its reader.
func (p *pinger) close() {
	p.mu.Lock()
	conn, done := p.conn, p.done
	p.conn = nil
	p.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
		<-done
	}
}

func sameIP(from net.Addr, dst netip.Addr) bool {
	var ip net.IP
	switch a := from.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	}
	got, ok := netip.AddrFromSlice(ip)
	return ok && got.Unmap() == dst
}
