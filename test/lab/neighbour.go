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
	type side struct {
		m   *address.Netlink
		ann *announce.Raw
		mac net.HardwareAddr
		n   *Member
	}
	var sides []side
	for _, n := range l.Nodes[:2] {
		ns, err := netns.GetFromName(n.NS)
		if err != nil {
			return nil, err
		}
		defer func() { _ = ns.Close() }()
		m, err := address.NewNetlink(ns)
		if err != nil {
			return nil, err
		}
		defer m.Close()
		ann := announce.NewRaw(ns)
		defer func() { _ = ann.Close() }()
		h, err := netlink.NewHandleAt(ns)
		if err != nil {
			return nil, err
		}
		link, err := h.LinkByName(NodeInterface)
		h.Close()
		if err != nil {
			return nil, err
		}
		sides = append(sides, side{m, ann, link.Attrs().HardwareAddr, n})
	}
	bits := 32
	if vip.Is6() {
		bits = 128
	}
	b := address.Binding{Interface: NodeInterface, Prefix: netip.PrefixFrom(vip, bits)}
	if err := sides[0].m.Bind(b); err != nil {
		return nil, err
	}
	defer func() { _ = sides[0].m.Unbind(b); _ = sides[1].m.Unbind(b) }()
	// Announce, as the agent does on every bind: the client may still have the VIP's old
	// MAC from an earlier measurement. Then the client talks to the VIP, so it has a
	// neighbour entry for it.
	if err := sides[0].ann.Announce(ctx, NodeInterface, vip, 1, 0); err != nil {
		return nil, err
	}
	url := fmt.Sprintf("http://%s/", net.JoinHostPort(vip.String(), "80"))
	// 3 s: room for one neighbour-solicitation retry. Right after an IPv6 bind the kernel
	// joins the address's solicited-node group from a work queue, so on a busy machine the
	// very first solicitation can arrive before it and go unanswered for a second.
	if body, err := l.Get(ctx, url, 3*time.Second); err != nil || body != sides[0].n.Name {
		return nil, fmt.Errorf("client cannot reach the VIP on %s: %q, %w", sides[0].n.Name, body, err)
	}
	clientNS, err := netns.GetFromName(l.Client.NS)
	if err != nil {
		return nil, err
	}
	defer func() { _ = clientNS.Close() }()
	updates := make(chan netlink.NeighUpdate, 256)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.NeighSubscribeAt(clientNS, updates, done); err != nil {
		return nil, fmt.Errorf("subscribing to the client's neighbour table: %w", err)
	}
	var results []MoveResult
	for i := range moves {
		from, to := sides[i%2], sides[(i+1)%2]
		if err := from.m.Unbind(b); err != nil {
			return results, err
		}
		if err := to.m.Bind(b); err != nil {
			return results, err
		}
		drain(updates)
		start := time.Now()
		timeout := 2 * time.Second
		if withAnnouncement {
			if err := to.ann.Announce(ctx, NodeInterface, vip, 1, 0); err != nil {
				return results, err
			}
		} else {
			timeout = 90 * time.Second
			rec, err := l.StartRecorder(RecordOptions{URL: url, Timeout: 200 * time.Millisecond, Duration: timeout})
			if err != nil {
				return results, err
			}
			defer func() { _, _ = rec.Stop() }()
		}
		deadline := time.After(timeout)
	wait:
		for {
			select {
			case u := <-updates:
				if u.IP.Equal(vip.AsSlice()) && bytes.Equal(u.HardwareAddr, to.mac) {
					results = append(results, MoveResult{From: from.n.Name, To: to.n.Name, Latency: time.Since(start)})
					break wait
				}
			case <-deadline:
				return results, fmt.Errorf("move %d (%s -> %s): the client's neighbour entry for %s never pointed at %s", i+1, from.n.Name, to.n.Name, vip, to.mac)
			}
		}
	}
	return results, nil
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
