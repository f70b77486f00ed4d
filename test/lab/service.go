package lab

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ServeNodeName is each lab node's HTTP service: it answers every request with the node's
// name and closes the connection, so every client request is a fresh TCP connection.
func ServeNodeName(addr, name string) error {
	if name == "" {
		return fmt.Errorf("serve-http needs --name")
	}
	srv := &http.Server{
		Addr:              addr,
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Connection", "close")
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
func DescribeRun(runRoot string, s state) string {
	holder := fmt.Sprintf("owned by pid %d", s.OwnerPID)
	switch {
	case s.Detached:
		holder = "detached (CLI)"
	case !s.alive():
		holder = fmt.Sprintf("crashed (pid %d gone): remove with lab down --all", s.OwnerPID)
	}
	return fmt.Sprintf("%s  %s  nodes %s  since %s  %s/%s",
		s.Prefix, holder, strings.Join(s.Nodes, ","), s.Created.Format(time.TimeOnly), runRoot, s.Prefix)
}
