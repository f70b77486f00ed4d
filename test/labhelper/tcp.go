package main

import (
	"errors"
	"flag"
	"net"
	"os"
	"time"
)

// connect opens a TCP connection to addr, within timeout, and closes it.
func connect(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	return conn.Close()
}

// checkTCP connects once: keepalived-default's vrrp_script (test/bench).
func checkTCP(fs *flag.FlagSet, args []string) error {
	addr := fs.String("addr", "", "host:port to connect to")
	timeout := fs.Duration("timeout", time.Second, "connect timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return connect(*addr, *timeout)
}

// trackTCP probes an address every --every and writes "0" (up) or "1" (down) to --file on
// each transition, with keepalived's fall/rise hysteresis; it starts down. It is the tuned
// keepalived profile's 0.1 s health check (test/bench), read by a vrrp_track_file:
// keepalived 2.2 takes vrrp_script intervals in whole seconds only.
func trackTCP(fs *flag.FlagSet, args []string) error {
	addr := fs.String("addr", "", "host:port to connect to")
	every := fs.Duration("every", 100*time.Millisecond, "probe interval (also the timeout)")
	fall := fs.Int("fall", 3, "failures in a row that make it down")
	rise := fs.Int("rise", 1, "successes in a row that make it up")
	file := fs.String("file", "", "file to write 0 (up) or 1 (down) to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" || *file == "" || *every <= 0 || *fall < 1 || *rise < 1 {
		return errors.New("track-tcp needs --addr, --file, --every > 0, --fall and --rise >= 1")
	}
	up, streak := false, 0
	for {
		ok := connect(*addr, *every) == nil
		if ok != up {
			streak++
		} else {
			streak = 0
		}
		if (ok && streak >= *rise) || (!ok && streak >= *fall) {
			up, streak = ok, 0
			state := map[bool]string{true: "0\n", false: "1\n"}[up]
			if err := os.WriteFile(*file, []byte(state), 0o644); err != nil {
				return err
			}
		}
		time.Sleep(*every)
	}
}
