package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"vigil.dev/vigil/test/lab"
)

// benchAnnounce measures how soon a client's neighbour entry follows a VIP that moved,
// with Vigil's announcements, and (as the baseline) without any.
func benchAnnounce(fs *flag.FlagSet, args []string) error {
	moves := fs.Int("moves", 20, "moves per address family")
	baseline := fs.Bool("baseline", true, "also measure one move per family without announcements (up to 90 s each)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := lab.Up(ctx, lab.Config{Nodes: 2, WithoutControlPlane: true, HelperBin: self, Logf: logf})
	if err != nil {
		return err
	}
	defer func() { _ = l.Down() }()
	fmt.Println("| family | moves | announcement | median | p99 | max |")
	fmt.Println("|---|---:|---|---:|---:|---:|")
	for _, vip := range []netip.Addr{lab.VIPv4(0), lab.VIPv6(0)} {
		family := map[bool]string{true: "IPv4 (gratuitous ARP)", false: "IPv6 (unsolicited NA)"}[vip.Is4()]
		runs := []struct {
			announce bool
			moves    int
		}{{true, *moves}}
		if *baseline {
			runs = append(runs, struct {
				announce bool
				moves    int
			}{false, 1})
		}
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
			fmt.Printf("| %s | %d | %s | %v | %v | %v |\n", family, len(lat), how,
				lab.Percentile(lat, 50).Round(time.Microsecond), lab.Percentile(lat, 99).Round(time.Microsecond), lab.Percentile(lat, 100).Round(time.Microsecond))
		}
	}
	return nil
}
