package dataplane

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"vigil.dev/vigil/agent/address"
)

// fakeNode is an address.Manager with one interface, eth0 in 198.18.0.0/24.
type fakeNode struct {
	mu     sync.Mutex
	bound  []address.Binding
	events []string
}

func (f *fakeNode) Bind(b address.Binding) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bound = append(f.bound, b)
	f.events = append(f.events, "bind "+b.String())
	return nil
}

func (f *fakeNode) Unbind(b address.Binding) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bound = slices.DeleteFunc(f.bound, func(x address.Binding) bool { return x == b })
	f.events = append(f.events, "unbind "+b.String())
	return nil
}

func (f *fakeNode) Renew([]address.Binding) error { return nil }

func (f *fakeNode) Bound() ([]address.Binding, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.bound), nil
}

func (f *fakeNode) Links() ([]address.Link, error) {
	return []address.Link{{Name: "eth0", Up: true, Carrier: true, Addresses: []address.Address{{Prefix: netip.MustParsePrefix("198.18.0.11/24")}}}}, nil
}

// fakeAnnouncer records when each announcement went out.
type fakeAnnouncer struct {
	mu        sync.Mutex
	sent      []time.Time
	failFirst int // bursts that fail before one goes out
}

func (a *fakeAnnouncer) Announce(ctx context.Context, _ string, _ netip.Addr, count int, interval time.Duration) error {
	a.mu.Lock()
	if a.failFirst > 0 {
		a.failFirst--
		a.mu.Unlock()
		return errors.New("sendto: network is down")
	}
	a.mu.Unlock()
	for i := range count {
		a.mu.Lock()
		a.sent = append(a.sent, time.Now())
		a.mu.Unlock()
		if i < count-1 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(interval):
			}
		}
	}
	return nil
}

func (a *fakeAnnouncer) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.sent)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSyncBindsAnnouncesRefreshesAndReleases(t *testing.T) {
	node, ann := &fakeNode{}, &fakeAnnouncer{}
	dp := New(node, ann, logr.Discard())
	vip := VIP{Name: "web", Address: netip.MustParseAddr("198.18.0.100"), PrefixLen: 32,
		Announce: Announce{Count: 3, Interval: 20 * time.Millisecond, Refresh: 50 * time.Millisecond}}

	start := time.Now()
	res, err := dp.Sync([]VIP{vip})
	if err != nil || !res["web"].Bound || res["web"].Interface != "eth0" {
		t.Fatalf("Sync = %+v, %v", res, err)
	}
	waitFor(t, "the first announcement", func() bool { return ann.count() >= 1 })
	ann.mu.Lock()
	first := ann.sent[0].Sub(start)
	ann.mu.Unlock()
	if first > 10*time.Millisecond {
		t.Errorf("first announcement %v after Sync, want at once", first)
	}
	waitFor(t, "the burst and a refresh", func() bool { return ann.count() >= 4 })

	// Syncing the same set again changes nothing and does not restart the burst.
	if _, err := dp.Sync([]VIP{vip}); err != nil {
		t.Fatal(err)
	}
	if got := len(node.events); got != 1 {
		t.Errorf("a second Sync of the same set made changes: %v", node.events)
	}

	if err := dp.ReleaseAll(); err != nil {
		t.Fatal(err)
	}
	if b, _ := node.Bound(); len(b) != 0 {
		t.Errorf("still bound after ReleaseAll: %v", b)
	}
	after := ann.count()
	time.Sleep(120 * time.Millisecond)
	if ann.count() != after {
		t.Error("announcements went on after ReleaseAll")
	}
}

func TestSyncDropsWhatIsNoLongerOwned(t *testing.T) {
	node := &fakeNode{bound: []address.Binding{{Interface: "eth0", Prefix: netip.MustParsePrefix("198.18.0.101/32")}}}
	dp := New(node, &fakeAnnouncer{}, logr.Discard())
	if _, err := dp.Sync(nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := node.Bound(); len(b) != 0 {
		t.Errorf("stale address kept: %v", b)
	}
}

// A VIP handed over stays bound without a word (the new owner announces it); taken back
// before it was released, it is announced again at once, or the clients stay away.
func TestQuietHoldKeepsTheAddressSilentAndTakingItBackAnnounces(t *testing.T) {
	node, ann := &fakeNode{}, &fakeAnnouncer{}
	dp := New(node, ann, logr.Discard())
	vip := VIP{Name: "web", Address: netip.MustParseAddr("198.18.0.100"), PrefixLen: 32,
		Announce: Announce{Count: 2, Interval: 10 * time.Millisecond, Refresh: 30 * time.Millisecond}}
	if _, err := dp.Sync([]VIP{vip}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the burst", func() bool { return ann.count() >= 2 })

	quiet := vip
	quiet.Quiet = true
	res, err := dp.Sync([]VIP{quiet})
	if err != nil || !res["web"].Bound {
		t.Fatalf("Sync(quiet) = %+v, %v; want it still bound", res, err)
	}
	if len(node.events) != 1 {
		t.Errorf("going quiet changed the address: %v", node.events)
	}
	before := ann.count()
	time.Sleep(100 * time.Millisecond) // three refresh periods
	if got := ann.count(); got != before {
		t.Errorf("%d announcements while quiet, want none", got-before)
	}

	if _, err := dp.Sync([]VIP{vip}); err != nil {
		t.Fatal(err)
	}
	taken := time.Now()
	waitFor(t, "the burst on taking it back", func() bool { return ann.count() >= before+2 })
	ann.mu.Lock()
	first := ann.sent[before].Sub(taken)
	ann.mu.Unlock()
	if first > 10*time.Millisecond {
		t.Errorf("first announcement %v after taking the VIP back, want at once", first)
	}
	if len(node.events) != 1 {
		t.Errorf("taking it back rebound the address: %v", node.events)
	}
	_ = dp.ReleaseAll()
}

// A held VIP whose claim changes (a new epoch: a takeover confirmed, a contested one) is
// announced again at once; an unchanged claim is not.
func TestANewClaimIsAnnouncedAgain(t *testing.T) {
	node, ann := &fakeNode{}, &fakeAnnouncer{}
	dp := New(node, ann, logr.Discard())
	vip := VIP{Name: "web", Address: netip.MustParseAddr("198.18.0.100"), PrefixLen: 32,
		Announce: Announce{Count: 2, Interval: 10 * time.Millisecond}, Claim: "epoch 1"}
	if _, err := dp.Sync([]VIP{vip}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the burst", func() bool { return ann.count() >= 2 })
	if _, err := dp.Sync([]VIP{vip}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if got := ann.count(); got != 2 {
		t.Fatalf("%d announcements after a sync with the same claim, want 2", got)
	}
	vip.Claim = "epoch 2"
	if _, err := dp.Sync([]VIP{vip}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the burst of the new claim", func() bool { return ann.count() >= 4 })
	if len(node.events) != 1 {
		t.Errorf("a new claim rebound the address: %v", node.events)
	}
}

// A burst that fails (an interface just back up says "network is down") is sent again
// until it goes out.
func TestAFailedAnnouncementIsRetried(t *testing.T) {
	node, ann := &fakeNode{}, &fakeAnnouncer{failFirst: 2}
	dp := New(node, ann, logr.Discard())
	vip := VIP{Name: "web", Address: netip.MustParseAddr("198.18.0.100"), PrefixLen: 32, Announce: Announce{Count: 1}}
	if _, err := dp.Sync([]VIP{vip}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the burst after two failures", func() bool { return ann.count() >= 1 })
}
