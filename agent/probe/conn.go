package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"vigil.dev/vigil/internal/netnsutil"
)

// A TCP or HTTP probe to an IP address opens its connection with raw system calls rather
// than net.Dialer: socket, a non-blocking connect, and a second connect that finds the
// handshake done when the backend is local (the kernel runs a loopback handshake inside
// the first connect). Only a handshake still in flight, or an HTTP exchange, goes through
// Go's poller. net.Dialer adds per connection an address parse, five setsockopt calls
// (TCP_NODELAY, keep-alive), getsockname, getpeername, an epoll registration and its
// removal, and a goroutine switch for the wait: most of a loopback probe's cost.

// errPending says the handshake has not finished yet.
var errPending = errors.New("connection in progress")

// aLongTimeAgo is a deadline in the past: it wakes whatever waits on the file at once.
var aLongTimeAgo = time.Unix(1, 0)

// socket opens a non-blocking TCP socket in the environment's namespace.
func (env Env) socket(v6 bool) (int, error) {
	family := unix.AF_INET
	if v6 {
		family = unix.AF_INET6
	}
	var fd int
	err := netnsutil.Do(env.NS, func() (err error) {
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return fd, nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// connected reports the outcome of a non-blocking connect on fd: nil once established,
// errPending while the handshake runs, or why it failed. It asks with a second connect,
// which on Linux answers all three in one system call: 0 (or EISCONN) when established,
// EALREADY while in progress, the socket's error otherwise.
func connected(fd int, sa unix.Sockaddr) error {
	for {
		err := unix.Connect(fd, sa)
		switch {
		case err == nil, errors.Is(err, unix.EISCONN):
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EALREADY), errors.Is(err, unix.EINPROGRESS):
			return errPending
		}
		return dialError(err)
	}
}

func dialError(err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
}

// connect opens a TCP connection to ap that completes the handshake by deadline (zero:
// none) unless ctx ends first. With keep it returns the connection, registered with Go's
// poller and its deadline set; without, it closes the established connection and returns
// nil: all a TCP check needs to know.
func (env Env) connect(ctx context.Context, ap netip.AddrPort, deadline time.Time, keep bool) (*os.File, error) {
	fd, err := env.socket(ap.Addr().Is6())
	if err != nil {
		return nil, err
	}
	sa := sockaddr(ap)
	switch err = unix.Connect(fd, sa); {
	case err == nil:
	case errors.Is(err, unix.EINPROGRESS), errors.Is(err, unix.EINTR), errors.Is(err, unix.EALREADY):
		err = connected(fd, sa)
	default:
		_ = unix.Close(fd)
		return nil, dialError(err)
	}
	switch {
	case err == nil && !keep:
		return nil, unix.Close(fd)
	case err != nil && !errors.Is(err, errPending):
		_ = unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "tcp")
	if !deadline.IsZero() {
		if err := f.SetDeadline(deadline); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	if errors.Is(err, errPending) {
		if err := waitConnected(ctx, f, sa); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	if !keep {
		return nil, f.Close()
	}
	return f, nil
}

// waitConnected waits in Go's poller for f's handshake to end (or its deadline, or ctx).
func waitConnected(ctx context.Context, f *os.File, sa unix.Sockaddr) error {
	stop := context.AfterFunc(ctx, func() { _ = f.SetDeadline(aLongTimeAgo) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var result error
	// The function checks readiness itself: an edge the poller saw before the wait began
	// is not lost.
	if err := rc.Write(func(fd uintptr) bool {
		result = connected(int(fd), sa)
		return !errors.Is(result, errPending)
	}); err != nil {
		return err
	}
	return result
}
