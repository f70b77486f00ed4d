package announce_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"vigil.dev/vigil/test/lab"
)

// After a move, one announcement from the new owner repoints the client's ARP / ND entry
// within 50 ms, without waiting for the cache to expire.
func TestAnnouncementRepointsTheNeighbourWithin50ms(t *testing.T) {
	l := lab.ForTest(t, lab.Config{Nodes: 2, WithoutControlPlane: true})
	for _, vip := range []netip.Addr{lab.VIPv4(0), lab.VIPv6(0)} {
		moves, err := l.MeasureNeighbourUpdates(context.Background(), vip, 20, true)
		if err != nil {
			t.Fatalf("%s: %v", vip, err)
		}
		var lat []time.Duration
		for _, m := range moves {
			lat = append(lat, m.Latency)
			if m.Latency > 50*time.Millisecond {
				t.Errorf("%s %s -> %s: neighbour updated after %v, want <= 50ms", vip, m.From, m.To, m.Latency)
			}
		}
		slices.Sort(lat)
		t.Logf("%s: %d moves, neighbour update median %v, max %v", vip, len(lat), lat[len(lat)/2], lat[len(lat)-1])
	}
}
