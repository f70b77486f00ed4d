package lab

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// ServeNodeName is each lab node's HTTP service: it answers every request with the node's
// name (/remote with the client's address; /upload after reading the whole request body)
// and closes the connection, so every client request is a fresh TCP connection.
func ServeNodeName(addr, name string) error {
	if name == "" {
		return fmt.Errorf("serve-http needs --name")
	}
	srv := &http.Server{
		Addr:              addr,
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			if r.URL.Path == "/upload" { // a long request: the answer comes after the whole body
				if _, err := io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20)); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
			}
			if r.URL.Path == "/remote" { // who is asking: the source address a peer sees
				host, _, _ := net.SplitHostPort(r.RemoteAddr)
				_, _ = fmt.Fprintln(w, host)
				return
			}
			_, _ = fmt.Fprintln(w, name)
		}),
	}
	srv.SetKeepAlivesEnabled(false)
	return srv.ListenAndServe()
}

// Burn keeps one core busy for d, then returns.
func Burn(d time.Duration) error {
	deadline := time.Now().Add(d)
	x := 0
	for time.Now().Before(deadline) {
		for i := range 100000 {
			x += i
		}
	}
	_ = x
	return nil
}

// DescribeRun is a line about a run for `lab status`.
func DescribeRun(s state) string {
	holder := fmt.Sprintf("owned by pid %d", s.OwnerPID)
	switch {
	case s.Detached:
		holder = "detached (CLI)"
	case !s.alive():
		holder = fmt.Sprintf("crashed (pid %d gone): remove with lab down --all", s.OwnerPID)
	}
	return fmt.Sprintf("%s  %s  nodes %s  since %s  %s",
		s.Prefix, holder, strings.Join(s.Nodes, ","), s.Created.Format(time.TimeOnly), s.RunDir)
}

// TrackOptions configure TrackTCP.
type TrackOptions struct {
	Addr       string
	Every      time.Duration
	Fall, Rise int
	File       string
}

// TrackTCP probes Addr every o.Every and writes "0" (up) or "1" (down) to o.File on each
// transition, with keepalived's fall/rise hysteresis; it starts down. It is the tuned
// keepalived profile's 0.1 s health check, read by a vrrp_track_file.
func TrackTCP(o TrackOptions) error {
	if o.Addr == "" || o.File == "" || o.Every <= 0 || o.Fall < 1 || o.Rise < 1 {
		return fmt.Errorf("track-tcp needs --addr, --file, --every > 0, --fall and --rise >= 1")
	}
	up, streak := false, 0
	for {
		conn, err := net.DialTimeout("tcp", o.Addr, o.Every)
		ok := err == nil
		if ok {
			_ = conn.Close()
		}
		if ok != up {
			streak++
		} else {
			streak = 0
		}
		if (ok && streak >= o.Rise) || (!ok && streak >= o.Fall) {
			up, streak = ok, 0
			state := map[bool]string{true: "0\n", false: "1\n"}[up]
			if err := os.WriteFile(o.File, []byte(state), 0o644); err != nil {
				return err
			}
		}
		time.Sleep(o.Every)
	}
}
