package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// AddressChange is one change of whether a node holds an address: it appeared on one of
// the node's interfaces, or went from it.
type AddressChange struct {
	Node  string
	At    time.Time // when the watch received the kernel's notification
	Added bool
	// Initial marks the addresses the node already held when the watch started.
	Initial bool
}

// AddressWatch follows one address on every node from the kernel's own notifications
// (rtnetlink address events, subscribed to inside each node's namespace): when it appears
// and when it goes, to the millisecond, whoever adds or removes it (an agent, the kernel
// when its lifetime runs out, a person). A renewal of its lifetime is no change.
type AddressWatch struct {
	Addr netip.Addr

	mu      sync.Mutex
	held    map[string]bool
	changes []AddressChange
	errs    []error
	done    chan struct{}
	stopped sync.Once
}

// WatchAddress starts watching addr on every node of the lab. Stop ends it (the lab's
// teardown closes the namespaces' sockets anyway).
func (l *Lab) WatchAddress(addr netip.Addr) (*AddressWatch, error) {
	w := &AddressWatch{Addr: addr, held: map[string]bool{}, done: make(chan struct{})}
	for _, n := range l.Nodes {
		if err := w.subscribe(n); err != nil {
			w.Stop()
			return nil, err
		}
	}
	return w, nil
}

func (w *AddressWatch) subscribe(n *Member) error {
	ns, err := netns.GetFromName(n.NS)
	if err != nil {
		return fmt.Errorf("opening netns %s: %w", n.NS, err)
	}
	defer func() { _ = ns.Close() }() // the subscription keeps its own socket in the namespace
	updates := make(chan netlink.AddrUpdate, 256)
	err = netlink.AddrSubscribeWithOptions(updates, w.done, netlink.AddrSubscribeOptions{
		Namespace: &ns,
		ErrorCallback: func(err error) {
			w.mu.Lock()
			w.errs = append(w.errs, fmt.Errorf("%s: %w", n.Name, err))
			w.mu.Unlock()
		},
	})
	if err != nil {
		return fmt.Errorf("watching the addresses of %s: %w", n.Name, err)
	}
	go func() {
		for u := range updates {
			if a, ok := netip.AddrFromSlice(u.LinkAddress.IP); ok && a.Unmap() == w.Addr {
				w.record(n.Name, u.NewAddr, false)
			}
		}
	}()
	// What the node holds already, read once subscribed so that no change falls between.
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("opening a netlink socket in %s: %w", n.NS, err)
	}
	defer h.Close()
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("listing the addresses of %s: %w", n.Name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == w.Addr {
			w.record(n.Name, true, true)
		}
	}
	return nil
}

func (w *AddressWatch) record(node string, added, initial bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.held[node] == added {
		return // a renewal of the lifetime, or a repeated deletion
	}
	w.held[node] = added
	w.changes = append(w.changes, AddressChange{Node: node, At: time.Now(), Added: added, Initial: initial})
}

// Changes returns every change seen so far, in the order received.
func (w *AddressWatch) Changes() []AddressChange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.changes)
}

// Holders are the nodes holding the address now, by name.
func (w *AddressWatch) Holders() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for node, held := range w.held {
		if held {
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return out
}

// Err reports what went wrong with the subscriptions (a lost notification would make the
// watch wrong), nil if nothing did.
func (w *AddressWatch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) == 0 {
		return nil
	}
	return fmt.Errorf("watching %s: %v", w.Addr, w.errs)
}

// WaitFor polls the changes until cond holds, and returns them; false after timeout.
func (w *AddressWatch) WaitFor(timeout time.Duration, cond func([]AddressChange) bool) ([]AddressChange, bool) {
	deadline := time.Now().Add(timeout)
	for {
		c := w.Changes()
		if cond(c) {
			return c, true
		}
		if time.Now().After(deadline) {
			return c, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop ends the watch.
func (w *AddressWatch) Stop() {
	w.stopped.Do(func() { close(w.done) })
}
