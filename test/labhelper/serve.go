package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
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

// burn keeps one core busy — or --threads of them, each a busy loop on an OS thread of
// its own, which the kernel schedules like as many processes — then exits (Lab.StarveCPU,
// Lab.StarveNodes): bounded to 10 minutes and 64 threads, so that a burner outlives no
// test and cannot grow without bound.
func burn(fs *flag.FlagSet, args []string) error {
	d := fs.Duration("for", 10*time.Second, "how long to burn (at most 10m)")
	threads := fs.Int("threads", 1, "busy loops, each on its own OS thread (1..64)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *threads < 1 || *threads > 64 {
		return fmt.Errorf("--threads %d: want 1..64", *threads)
	}
	runtime.GOMAXPROCS(max(*threads, runtime.GOMAXPROCS(0)))
	deadline := time.Now().Add(min(*d, 10*time.Minute))
	var wg sync.WaitGroup
	for range *threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // one OS thread per loop, as a process of its own would be
			x := 0
			for time.Now().Before(deadline) {
				for i := range 100000 {
					x += i
				}
			}
			_ = x
		}()
	}
	wg.Wait()
	return nil
}
