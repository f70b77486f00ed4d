package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"vigil.dev/vigil/test/lab"
)

// serveHTTP is each lab node's HTTP service (Lab.StartService): it answers every request
// with the node's name (/remote with the client's address; /upload after reading the whole
// request body) and closes the connection, so every client request is a fresh TCP
// connection.
func serveHTTP(fs *flag.FlagSet, args []string) error {
	name := fs.String("name", "", "the node name to answer with")
	port := fs.Int("port", lab.HTTPPort, "port")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("serve-http needs --name")
	}
	srv := &http.Server{
		Addr:              fmt.Sprintf(":%d", *port),
		ReadHeaderTimeout: 5 * time.Second,
		Handler:           nodeNameHandler(*name),
	}
	srv.SetKeepAlivesEnabled(false)
	return srv.ListenAndServe()
}

func nodeNameHandler(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
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
	}
}

// burn keeps one core busy, then exits (Lab.StarveCPU): bounded to 10 minutes, so that a
// burner outlives no test.
func burn(fs *flag.FlagSet, args []string) error {
	d := fs.Duration("for", 10*time.Second, "how long to burn one core (at most 10m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	deadline := time.Now().Add(min(*d, 10*time.Minute))
	x := 0
	for time.Now().Before(deadline) {
		for i := range 100000 {
			x += i
		}
	}
	_ = x
	return nil
}
