package lab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"
)

// ip runs iproute2's ip with args and returns its output; errors carry ip's message.
func ip(args ...string) (string, error) {
	return run("ip", args...)
}

func run(name string, args ...string) (string, error) {
	var out, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// inNS runs a command inside network namespace ns.
func inNS(ns string, name string, args ...string) (string, error) {
	return run("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// listNamespaces returns the names of all named network namespaces.
func listNamespaces() ([]string, error) {
	out, err := ip("netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// nsPIDs returns the processes running in network namespace ns.
func nsPIDs(ns string) ([]int, error) {
	out, err := ip("netns", "pids", ns)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// DialerIn returns a dial function whose sockets are created inside network namespace ns,
// so that a process in the host namespace can reach the lab without any address or route
// on a host interface. Only socket creation needs the namespace; I/O works from anywhere.
func DialerIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			conn net.Conn
			err  error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			// The thread is not unlocked if restoring fails: Go then ends it with the goroutine.
			orig, err := netns.Get()
			if err != nil {
				ch <- result{err: fmt.Errorf("reading current netns: %w", err)}
				return
			}
			defer func() { _ = orig.Close() }()
			target, err := netns.GetFromName(ns)
			if err != nil {
				ch <- result{err: fmt.Errorf("opening netns %s: %w", ns, err)}
				return
			}
			defer func() { _ = target.Close() }()
			if err := netns.Set(target); err != nil {
				ch <- result{err: fmt.Errorf("entering netns %s: %w", ns, err)}
				return
			}
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
			ch <- result{conn, err}
		}()
		r := <-ch
		return r.conn, r.err
	}
}

func runStdin(stdin string, name string, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// inNSCombined runs a command inside ns and returns stdout and stderr together, also on error.
func inNSCombined(ns string, name string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// ServeEach accepts connections on ln until it is closed, and serves each in a goroutine
// of its own with handle, closing it afterwards: a test's service with its own protocol.
func ServeEach(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer func() { _ = c.Close() }()
			handle(c)
		}()
	}
}
