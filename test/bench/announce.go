package bench

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"vigil.dev/vigil/test/lab"
)

// Announce measures how soon a client's neighbour entry follows a VIP that moved between
// the lab's first two nodes, per address family: moves moves with Vigil's announcements
// and, with baseline, one move without any (waiting on the kernel's neighbour state
// machine, up to 90 s). It writes a Markdown table to w.
func Announce(ctx context.Context, l *lab.Lab, moves int, baseline bool, w io.Writer) error {
	type run struct {
		announce bool
		moves    int
	}
	runs := []run{{true, moves}}
	if baseline {
		runs = append(runs, run{false, 1})
	}
	_, _ = fmt.Fprintln(w, "| family | moves | announcement | median | p99 | max |")
	_, _ = fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|")
	for _, vip := range []netip.Addr{lab.VIPv4(0), lab.VIPv6(0)} {
		family := map[bool]string{true: "IPv4 (gratuitous ARP)", false: "IPv6 (unsolicited NA)"}[vip.Is4()]
		for _, r := range runs {
			res, err := l.MeasureNeighbourUpdates(ctx, vip, r.moves, r.announce)
			if err != nil {
				return err
			}
			var lat []time.Duration
			for _, m := range res {
				lat = append(lat, m.Latency)
			}
			how := map[bool]string{true: "Vigil, 1 packet", false: "none (baseline)"}[r.announce]
			_, _ = fmt.Fprintf(w, "| %s | %d | %s | %v | %v | %v |\n", family, len(lat), how,
				lab.Percentile(lat, 50).Round(time.Microsecond), lab.Percentile(lat, 99).Round(time.Microsecond), lab.Percentile(lat, 100).Round(time.Microsecond))
		}
	}
	return nil
}
