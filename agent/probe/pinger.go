package probe

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"vigil.dev/vigil/internal/echo"
)

// pinger is one ICMP socket per address family shared by every ICMP check: its reader
// hands each echo reply to the probe waiting for its sequence number. A socket per probe
// would cost a socket and a close per probe, and every raw socket sees every reply.
type pinger struct {
	ns netns.NsHandle
	v6 bool

	mu      sync.Mutex
	sock    *echo.Socket
	seq     uint16
	waiting map[uint16]*pending
}

type pending struct {
	dst   netip.Addr
	reply chan struct{}
}

func newPinger(ns netns.NsHandle, v6 bool) *pinger {
	return &pinger{ns: ns, v6: v6, waiting: map[uint16]*pending{}}
}

// open opens the socket on first use. p.mu is held.
func (p *pinger) open() error {
	if p.sock != nil {
		return nil
	}
	sock, err := echo.Listen(p.ns, p.v6, p.replied)
	if err != nil {
		return err
	}
	p.sock = sock
	return nil
}

func (p *pinger) replied(r echo.Reply) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w, ok := p.waiting[r.Seq]; ok && r.From == w.dst {
		delete(p.waiting, r.Seq)
		close(w.reply)
	}
}

// ping sends one echo request to dst and waits for the reply, the deadline (zero: none)
// or ctx.
func (p *pinger) ping(ctx context.Context, deadline time.Time, dst netip.Addr, zone string) error {
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
	w := &pending{dst: dst.Unmap().WithZone(""), reply: make(chan struct{})}
	p.waiting[seq] = w
	sock := p.sock
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		if p.waiting[seq] == w {
			delete(p.waiting, seq)
		}
		p.mu.Unlock()
	}()
	if err := sock.Send(dst, zone, seq); err != nil {
		return err
	}
	var expired <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-w.reply:
		return nil
	case <-ctx.Done():
	case <-expired:
	}
	return fmt.Errorf("no echo reply from %s: timed out", dst)
}

// close closes the socket and waits for its reader.
func (p *pinger) close() {
	p.mu.Lock()
	sock := p.sock
	p.sock = nil
	p.mu.Unlock()
	if sock != nil {
		_ = sock.Close()
	}
}
