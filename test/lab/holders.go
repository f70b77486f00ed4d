package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// HolderSample is which nodes' kernels held an address at one instant.
type HolderSample struct {
	At      time.Time
	Holders []string // nodes with the address on any interface
	Errs    []string // nodes that could not be read, with why
}

// HolderSampler reads, every interval, which of some nodes hold an address on any
// interface: what `ip -o addr` prints in each, asked over netlink.
type HolderSampler struct {
	*netlinkSampler[HolderSample]
}

// SampleHolders starts sampling the named nodes (every node when none is named) for addr.
func (l *Lab) SampleHolders(addr netip.Addr, every time.Duration, nodes ...string) (*HolderSampler, error) {
	members := l.Nodes
	if len(nodes) > 0 {
		members = nil
		for _, name := range nodes {
			n, err := l.Node(name)
			if err != nil {
				return nil, err
			}
			members = append(members, n)
		}
	}
	s, err := startSampling(members, every, func(nodes []string, handles []*netlink.Handle) HolderSample {
		sample := HolderSample{At: time.Now()}
		for i, h := range handles {
			held, err := holds(h, addr)
			switch {
			case err != nil:
				sample.Errs = append(sample.Errs, nodes[i]+": "+err.Error())
			case held:
				sample.Holders = append(sample.Holders, nodes[i])
			}
		}
		return sample
	})
	if err != nil {
		return nil, err
	}
	return &HolderSampler{s}, nil
}

// Holders returns which of the named nodes (every node when none is named) hold addr now.
func (l *Lab) Holders(addr netip.Addr, nodes ...string) ([]string, error) {
	s, err := l.SampleHolders(addr, time.Hour, nodes...)
	if err != nil {
		return nil, err
	}
	samples := s.Stop()
	if len(samples) == 0 {
		return nil, errors.New("no sample taken")
	}
	first := samples[0]
	if len(first.Errs) > 0 {
		return first.Holders, fmt.Errorf("reading addresses: %v", first.Errs)
	}
	return first.Holders, nil
}

// holds reports whether addr is on any interface of the namespace h reads.
func holds(h *netlink.Handle, addr netip.Addr) (bool, error) {
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if errors.Is(err, netlink.ErrDumpInterrupted) {
		addrs, err = h.AddrList(nil, netlink.FAMILY_ALL) // the addresses changed meanwhile: once more
	}
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(addrs, func(a netlink.Addr) bool {
		ip, ok := netip.AddrFromSlice(a.IP)
		return ok && ip.Unmap() == addr
	}), nil
}

// OneHolder finds the first sample at or after from that starts a run of samples in which
// exactly one node, always the same, holds the address, lasting at least stay: when the
// address settled on one holder for good (for stay). It returns that sample's time and the
// node, ok false when no run lasts stay. A sample that could not read every node breaks a
// run. Pure.
func OneHolder(samples []HolderSample, from time.Time, stay time.Duration) (at time.Time, node string, ok bool) {
	for _, s := range samples {
		if s.At.Before(from) {
			continue
		}
		if len(s.Holders) != 1 || len(s.Errs) > 0 {
			node = ""
			continue
		}
		if node != s.Holders[0] {
			at, node = s.At, s.Holders[0]
		}
		if s.At.Sub(at) >= stay {
			return at, node, true
		}
	}
	return time.Time{}, "", false
}

// HolderTimeline describes the samples for people: one line per change of holders, with
// its offset from t0 ("+1.25s node-a,node-b").
func HolderTimeline(samples []HolderSample, t0 time.Time) []string {
	var lines []string
	last := "-"
	for _, s := range samples {
		cur := strings.Join(s.Holders, ",")
		if cur == "" {
			cur = "nobody"
		}
		if len(s.Errs) > 0 {
			cur += " (unreadable: " + strings.Join(s.Errs, "; ") + ")"
		}
		if cur != last {
			lines = append(lines, fmt.Sprintf("%+.2fs %s", s.At.Sub(t0).Seconds(), cur))
			last = cur
		}
	}
	return lines
}
