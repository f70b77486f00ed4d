package lab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"vigil.dev/vigil/agent/address"
	"vigil.dev/vigil/agent/announce"
)

// MoveResult is one measured move of a VIP between two nodes.
type MoveResult struct {
	From, To string
	// Latency is from the first announcement leaving the new owner to the client's
	// neighbour entry for the VIP pointing at the new owner's MAC.
	Latency time.Duration
}

// MeasureNeighbourUpdates moves vip back and forth between the first two nodes `moves`
// times with Vigil's real address manager and announcer, and measures how soon the
// client's ARP / ND entry follows each move. With withAnnouncement false nothing is announced and
// the client sends a request every 10 ms meanwhile: the baseline of waiting for the kernel's
// neighbour state machine to give up on the old MAC (bounded by 90 s a move).
func (l *Lab) MeasureNeighbourUpdates(ctx context.Context, vip netip.Addr, moves int, withAnnouncement bool) ([]MoveResult, error) {
	if len(l.Nodes) < 2 {
		return nil, fmt.Errorf("need two nodes")
	}
	var sides []*moveSide
	defer func() {
		for _, s := range sides {
			s.close()
		}
	}()
	for _, n := range l.Nodes[:2] {
		s, err := openMoveSide(n)
		if err != nil {
			return nil, err
		}
		sides = append(sides, s)
	}
	b := address.Binding{Interface: NodeInterface, Prefix: netip.PrefixFrom(vip, vip.BitLen())}
	if err := sides[0].m.Bind(b); err != nil {
		return nil, err
	}
	defer func() { _ = sides[0].m.Unbind(b); _ = sides[1].m.Unbind(b) }()
	url := fmt.Sprintf("http://%s/", net.JoinHostPort(vip.String(), "80"))
	if err := l.reachFrom(ctx, sides[0], vip, url); err != nil {
		return nil, err
	}
	updates, stop, err := l.watchClientNeighbours()
	if err != nil {
		return nil, err
	}
	defer stop()
	var results []MoveResult
	for i := range moves {
		from, to := sides[i%2], sides[(i+1)%2]
		latency, err := l.measureMove(ctx, from, to, b, url, updates, withAnnouncement)
		if err != nil {
			return results, fmt.Errorf("move %d (%s -> %s): %w", i+1, from.n.Name, to.n.Name, err)
		}
		results = append(results, MoveResult{From: from.n.Name, To: to.n.Name, Latency: latency})
	}
	return results, nil
}

// moveSide is one of the two nodes MeasureNeighbourUpdates moves a VIP between: Vigil's
// address manager and announcer in its namespace, and its MAC.
type moveSide struct {
	n   *Member
	ns  netns.NsHandle
	m   *address.Netlink
	ann *announce.Raw
	mac net.HardwareAddr
}

// openMoveSide opens Vigil's address manager and announcer in n's namespace and reads the
// MAC of its lab interface; close closes them.
func openMoveSide(n *Member) (*moveSide, error) {
	ns, err := netns.GetFromName(n.NS)
	if err != nil {
		return nil, err
	}
	s := &moveSide{n: n, ns: ns}
	if s.m, err = address.NewNetlink(ns); err != nil {
		s.close()
		return nil, err
	}
	s.ann = announce.NewRaw(ns)
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		s.close()
		return nil, err
	}
	link, err := h.LinkByName(NodeInterface)
	h.Close()
	if err != nil {
		s.close()
		return nil, err
	}
	s.mac = link.Attrs().HardwareAddr
	return s, nil
}

func (s *moveSide) close() {
	if s.ann != nil {
		_ = s.ann.Close()
	}
	if s.m != nil {
		s.m.Close()
	}
	_ = s.ns.Close()
}

// reachFrom announces the VIP from s, which holds it, as the agent does on every bind (the
// client may still have the VIP's old MAC from an earlier measurement), and has the client
// talk to it through url, so that the client has a neighbour entry for it.
func (l *Lab) reachFrom(ctx context.Context, s *moveSide, vip netip.Addr, url string) error {
	if err := s.ann.Announce(ctx, NodeInterface, vip, 1, 0); err != nil {
		return err
	}
	// 3 s: room for one neighbour-solicitation retry. Right after an IPv6 bind the kernel
	// joins the address's solicited-node group from a work queue, so on a busy machine the
	// very first solicitation can arrive before it and go unanswered for a second.
	if body, err := l.Get(ctx, url, 3*time.Second); err != nil || body != s.n.Name {
		return fmt.Errorf("client cannot reach the VIP on %s: %q, %w", s.n.Name, body, err)
	}
	return nil
}

// watchClientNeighbours subscribes to the changes of the client's neighbour table; stop
// ends the subscription.
func (l *Lab) watchClientNeighbours() (updates chan netlink.NeighUpdate, stop func(), err error) {
	clientNS, err := netns.GetFromName(l.Client.NS)
	if err != nil {
		return nil, nil, err
	}
	updates = make(chan netlink.NeighUpdate, 256)
	done := make(chan struct{})
	stop = func() { close(done); _ = clientNS.Close() }
	if err := netlink.NeighSubscribeAt(clientNS, updates, done); err != nil {
		stop()
		return nil, nil, fmt.Errorf("subscribing to the client's neighbour table: %w", err)
	}
	return updates, stop, nil
}

// measureMove moves the binding b from one side to the other and returns how soon the
// client's neighbour entry for the VIP points at the new side's MAC: announced within 2 s,
// or, without announcement, within 90 s of requests to url every 10 ms.
func (l *Lab) measureMove(ctx context.Context, from, to *moveSide, b address.Binding, url string, updates <-chan netlink.NeighUpdate, withAnnouncement bool) (time.Duration, error) {
	vip := b.Prefix.Addr()
	if err := from.m.Unbind(b); err != nil {
		return 0, err
	}
	if err := to.m.Bind(b); err != nil {
		return 0, err
	}
	drain(updates)
	start := time.Now()
	timeout := 2 * time.Second
	if withAnnouncement {
		if err := to.ann.Announce(ctx, NodeInterface, vip, 1, 0); err != nil {
			return 0, err
		}
	} else {
		timeout = 90 * time.Second
		rec, err := l.StartRecorder(RecordOptions{URL: url, Timeout: 200 * time.Millisecond, Duration: timeout})
		if err != nil {
			return 0, err
		}
		defer func() { _, _ = rec.Stop() }()
	}
	deadline := time.After(timeout)
	for {
		select {
		case u := <-updates:
			if u.IP.Equal(vip.AsSlice()) && bytes.Equal(u.HardwareAddr, to.mac) {
				return time.Since(start), nil
			}
		case <-deadline:
			return 0, fmt.Errorf("the client's neighbour entry for %s never pointed at %s", vip, to.mac)
		}
	}
}

func drain(ch <-chan netlink.NeighUpdate) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
