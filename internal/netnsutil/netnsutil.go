// Package netnsutil runs code inside a network namespace, for opening sockets there.
package netnsutil

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn on an OS thread inside ns and returns its error. Sockets fn opens belong to
// ns for their whole life, whichever thread uses them later. A closed handle (netns.None())
// runs fn in the caller's namespace.
func Do(ns netns.NsHandle, fn func() error) error {
	if !ns.IsOpen() {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("reading current netns: %w", err)
			return
		}
		defer func() { _ = orig.Close() }()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("entering netns: %w", err)
			return
		}
		err = fn()
		// Unlock only once back home; otherwise Go ends the thread with the goroutine.
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}
