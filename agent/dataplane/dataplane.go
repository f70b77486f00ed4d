package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"

	"vigil.dev/vigil/agent/address"
	"vigil.dev/vigil/agent/announce"
)

// Result is the outcome of one Sync for one VIP.
type Result struct {
	Bound     bool
	Interface string
	Err       error // why the node cannot hold it (then it is not eligible)
}

// Dataplane applies plans with an address manager and announces with an announcer.
type Dataplane struct {
	addrs address.Manager
	ann   announce.Announcer
	log   logr.Logger

	// syncMu serialises Sync, renewals and releases: a renewal must never race with the
	// unbind of the address it renews.
	syncMu sync.Mutex
	held   []address.Binding // what the last Sync left bound, renewed until the next

	mu       sync.Mutex
	speakers map[netip.Addr]*speaker // running announcement loops, per bound VIP
	quiet    map[netip.Addr]bool     // bound, not announced (VIP.Quiet)
	claims   map[netip.Addr]string   // the claim last announced, per bound VIP
	wg       sync.WaitGroup
}

type speaker struct {
	binding address.Binding
	policy  Announce
	cancel  context.CancelFunc
}

// New returns a Dataplane.
func New(addrs address.Manager, ann announce.Announcer, log logr.Logger) *Dataplane {
	return &Dataplane{addrs: addrs, ann: ann, log: log, speakers: map[netip.Addr]*speaker{}, quiet: map[netip.Addr]bool{},
		claims: map[netip.Addr]string{}}
}

// Sync makes the node hold exactly desired, with the fewest changes: VIPs already bound as
// wanted are adopted untouched, Vigil addresses not desired are removed, the rest bound and
// announced (the first announcement goes out right after the bind).
func (d *Dataplane) Sync(desired []VIP) (map[string]Result, error) {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	results, err := d.sync(desired)
	d.held = d.held[:0]
	for _, v := range desired {
		if r := results[v.Name]; r.Bound {
			d.held = append(d.held, address.Binding{Interface: r.Interface, Prefix: netip.PrefixFrom(v.Address, v.PrefixLen)})
		}
	}
	return results, err
}

// RenewEvery renews the kernel lifetime of the held addresses every interval until ctx is
// done, and reports each gap between renewals to observe (a busy node renews late; an
// address outlives its last renewal only by the lifetime).
func (d *Dataplane) RenewEvery(ctx context.Context, interval time.Duration, observe func(gap time.Duration)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.syncMu.Lock()
		err := d.addrs.Renew(d.held)
		d.syncMu.Unlock()
		if err != nil {
			d.log.Error(err, "renewing VIP lifetimes")
		}
		now := time.Now()
		observe(now.Sub(last))
		last = now
	}
}

func (d *Dataplane) sync(desired []VIP) (map[string]Result, error) {
	links, err := d.addrs.Links()
	if err != nil {
		return nil, err
	}
	bound, err := d.addrs.Bound()
	if err != nil {
		return nil, err
	}
	plan := MakePlan(desired, links, bound)
	results := map[string]Result{}
	var errs []error
	for _, b := range plan.Unbind {
		d.stopSpeaker(b.Prefix.Addr())
		if err := d.addrs.Unbind(b); err != nil {
			errs = append(errs, err)
			continue
		}
		d.log.Info("unbound VIP", "address", b.Prefix.Addr().String(), "prefixLength", b.Prefix.Bits(), "interface", b.Interface)
	}
	for name, err := range plan.Failed {
		results[name] = Result{Err: err}
	}
	for _, t := range plan.Keep {
		results[t.VIP.Name] = Result{Bound: true, Interface: t.Binding.Interface}
		d.ensureSpeaker(t, false)
	}
	for _, t := range plan.Bind {
		if err := d.addrs.Bind(t.Binding); err != nil {
			results[t.VIP.Name] = Result{Err: err}
			var foreign *address.ForeignAddressError
			if !errors.As(err, &foreign) {
				errs = append(errs, err)
			}
			continue
		}
		d.log.Info("bound VIP", "vip", t.VIP.Name, "address", t.Binding.Prefix.Addr().String(), "prefixLength", t.Binding.Prefix.Bits(),
			"interface", t.Binding.Interface, "claim", t.VIP.Claim)
		results[t.VIP.Name] = Result{Bound: true, Interface: t.Binding.Interface}
		d.ensureSpeaker(t, true)
	}
	return results, errors.Join(errs...)
}

// ensureSpeaker runs the VIP's announcements: a burst now when it was just bound, and the
// periodic refresh if its policy has one. A policy or interface change restarts it.
func (d *Dataplane) ensureSpeaker(t Target, burst bool) {
	addr := t.Binding.Prefix.Addr()
	d.mu.Lock()
	defer d.mu.Unlock()
	if t.VIP.Quiet {
		d.quiet[addr] = true
		if s, ok := d.speakers[addr]; ok {
			s.cancel()
			delete(d.speakers, addr)
		}
		return
	}
	if d.quiet[addr] {
		delete(d.quiet, addr)
		burst = true // taken back while handing it over: the clients went elsewhere
	}
	if claim, ok := d.claims[addr]; ok && claim != t.VIP.Claim {
		burst = true // a new claim (a new epoch): clients may have gone elsewhere meanwhile
	}
	d.claims[addr] = t.VIP.Claim
	if s, ok := d.speakers[addr]; ok {
		if s.binding == t.Binding && s.policy == t.VIP.Announce && !burst {
			return
		}
		s.cancel()
		delete(d.speakers, addr)
	}
	if !burst && t.VIP.Announce.Refresh <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &speaker{binding: t.Binding, policy: t.VIP.Announce, cancel: cancel}
	d.speakers[addr] = s
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.speak(ctx, s, burst)
	}()
}

func (d *Dataplane) speak(ctx context.Context, s *speaker, burst bool) {
	ifname, addr, p := s.binding.Interface, s.binding.Prefix.Addr(), s.policy
	if burst {
		d.announceUntilSent(ctx, ifname, addr, p)
	}
	if p.Refresh <= 0 {
		return
	}
	// The burst has just announced: the first refresh is one period later.
	select {
	case <-ctx.Done():
		return
	case <-time.After(p.Refresh):
	}
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := d.ann.Announce(ctx, ifname, addr, 1, 0); err != nil && ctx.Err() == nil {
			d.log.Error(err, "refreshing announcement", "address", addr.String(), "interface", ifname)
		}
	}, p.Refresh)
}

// announceRetry spaces the attempts of a burst that failed (an interface just back up
// answers "network is down" for a moment); announceRetries bounds them.
const (
	announceRetry   = 200 * time.Millisecond
	announceRetries = 50
)

// announceUntilSent sends the burst, and sends it again while it fails: a VIP that is bound
// but never announced leaves the clients with the old owner's address until their
// neighbour entry expires.
func (d *Dataplane) announceUntilSent(ctx context.Context, ifname string, addr netip.Addr, p Announce) {
	for attempt := 0; attempt < announceRetries; attempt++ {
		err := d.ann.Announce(ctx, ifname, addr, p.Count, p.Interval)
		if err == nil || ctx.Err() != nil {
			if attempt > 0 && err == nil {
				d.log.Info("announced VIP after retrying", "address", addr.String(), "interface", ifname, "attempts", attempt+1)
			}
			return
		}
		if attempt == 0 {
			d.log.Error(err, "announcing VIP; retrying", "address", addr.String(), "interface", ifname)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(announceRetry):
		}
	}
	d.log.Error(nil, "giving up announcing VIP", "address", addr.String(), "interface", ifname, "attempts", announceRetries)
}

func (d *Dataplane) stopSpeaker(addr netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.quiet, addr)
	delete(d.claims, addr)
	if s, ok := d.speakers[addr]; ok {
		s.cancel()
		delete(d.speakers, addr)
	}
}

// ReleaseAll unbinds every address Vigil holds on the node and stops all announcements.
func (d *Dataplane) ReleaseAll() error {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	d.held = nil
	d.mu.Lock()
	for addr, s := range d.speakers {
		s.cancel()
		delete(d.speakers, addr)
	}
	clear(d.quiet)
	clear(d.claims)
	d.mu.Unlock()
	d.wg.Wait()
	bound, err := d.addrs.Bound()
	if err != nil {
		return fmt.Errorf("listing Vigil addresses to release: %w", err)
	}
	var errs []error
	for _, b := range bound {
		if err := d.addrs.Unbind(b); err != nil {
			errs = append(errs, err)
			continue
		}
		d.log.Info("released VIP", "address", b.Prefix.Addr().String(), "interface", b.Interface)
	}
	return errors.Join(errs...)
}
