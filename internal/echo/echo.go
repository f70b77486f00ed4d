// Package echo sends ICMP echo requests and hands their replies to a callback: the agent's
// ICMP health checks and the controller's node watch share it. A socket is an
// unprivileged ping socket where the kernel allows it (net.ipv4.ping_group_range, which a
// pod may set as a safe sysctl), a raw socket (CAP_NET_RAW) otherwise.
package echo

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"vigil.dev/vigil/internal/netnsutil"
)

// Reply is an echo reply to one of this socket's requests.
type Reply struct {
	From netip.Addr // unmapped, without zone
	Seq  uint16
	At   time.Time // when the socket's reader received it
}

// Socket is one ICMP socket of one address family. One reader goroutine hands every reply
// to this socket's requests to the callback given to Listen.
type Socket struct {
	conn       *icmp.PacketConn
	v6         bool
	privileged bool // raw socket: it sees every echo reply, ours tell themselves by ID
	id         int
	done       chan struct{}
	closeOnce  sync.Once
}

// Listen opens a socket of the family (v6: ICMPv6) in network namespace ns (netns.None():
// the caller's) and starts its reader, which calls onReply for every reply; onReply must
// not block for long.
func Listen(ns netns.NsHandle, v6 bool, onReply func(Reply)) (*Socket, error) {
	network, raw, addr := "udp4", "ip4:icmp", "0.0.0.0"
	if v6 {
		network, raw, addr = "udp6", "ip6:ipv6-icmp", "::"
	}
	s := &Socket{v6: v6, id: rand.IntN(0xffff), done: make(chan struct{})}
	err := netnsutil.Do(ns, func() error {
		var e error
		if s.conn, e = icmp.ListenPacket(network, addr); e == nil {
			return nil
		}
		s.privileged = true
		s.conn, e = icmp.ListenPacket(raw, addr)
		return e
	})
	if err != nil {
		return nil, fmt.Errorf("opening an ICMP socket (unprivileged ping not allowed by net.ipv4.ping_group_range, and no CAP_NET_RAW?): %w", err)
	}
	go s.read(onReply)
	return s, nil
}

// Send sends one echo request with sequence number seq to dst (zone: the interface, for
// a link-local address).
func (s *Socket) Send(dst netip.Addr, zone string, seq uint16) error {
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if s.v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	b, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: s.id, Seq: int(seq), Data: []byte("vigil")}}).Marshal(nil)
	if err != nil {
		return err
	}
	var to net.Addr = &net.UDPAddr{IP: dst.AsSlice(), Zone: zone}
	if s.privileged {
		to = &net.IPAddr{IP: dst.AsSlice(), Zone: zone}
	}
	if _, err := s.conn.WriteTo(b, to); err != nil {
		return fmt.Errorf("sending an echo request to %s: %w", dst, err)
	}
	return nil
}

// Close closes the socket and waits for its reader to return.
func (s *Socket) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.conn.Close() })
	<-s.done
	return err
}

func (s *Socket) read(onReply func(Reply)) {
	defer close(s.done)
	proto := 1
	if s.v6 {
		proto = 58
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		at := time.Now()
		msg, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || (msg.Type != ipv4.ICMPTypeEchoReply && msg.Type != ipv6.ICMPTypeEchoReply) {
			continue
		}
		echo, ok := msg.Body.(*icmp.Echo)
		// A ping socket's kernel sets the ID and delivers only this socket's replies.
		if !ok || (s.privileged && echo.ID != s.id) {
			continue
		}
		if addr, ok := addrOf(from); ok {
			onReply(Reply{From: addr, Seq: uint16(echo.Seq), At: at})
		}
	}
}

func addrOf(from net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := from.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	}
	got, ok := netip.AddrFromSlice(ip)
	return got.Unmap().WithZone(""), ok
}
