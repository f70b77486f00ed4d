package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// What the recorder and the sweep share: a helper process in the client namespace sends
// HTTP requests, each on a fresh TCP connection, and writes each result as a JSON line to
// a file, which the lab reads back while the process runs.

// sendRequests runs requests for at most d with an HTTP client that makes each request a
// fresh TCP connection, both bounded by timeout, and writes what requests sends on results
// as JSON lines to w.
func sendRequests[T any](ctx context.Context, w io.Writer, d, timeout time.Duration, requests func(ctx context.Context, hc *http.Client, results chan<- T)) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
	}}
	return writeJSONLines(w, func(results chan<- T) { requests(ctx, hc, results) })
}

// recordEvery starts a request to url every every, each in its own goroutine so that a
// hanging one never delays the next, until ctx is done, waits for them and hands each
// result to got.
func recordEvery(ctx context.Context, hc *http.Client, url string, every time.Duration, got func(Sample)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		wg.Go(func() { got(request(hc, url)) })
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// writeJSONLines runs produce, which sends on results until it returns, while it writes
// each result as a JSON line to w, flushed every 50 ms; it returns once all are written.
func writeJSONLines[T any](w io.Writer, produce func(results chan<- T)) error {
	results := make(chan T, 1024)
	done := make(chan error)
	go func() {
		bw := bufio.NewWriter(w)
		enc := json.NewEncoder(bw)
		flush := time.NewTicker(50 * time.Millisecond)
		defer flush.Stop()
		var err error
		for {
			select {
			case s, ok := <-results:
				if !ok {
					done <- errors.Join(err, bw.Flush())
					return
				}
				err = errors.Join(err, enc.Encode(s))
			case <-flush.C:
				err = errors.Join(err, bw.Flush())
			}
		}
	}()
	produce(results)
	close(results)
	return <-done
}

// readJSONLines reads the JSON lines written to path so far, in the order written: none
// while the file does not exist yet; a line that does not decode (one being written) is
// passed over.
func readJSONLines[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var out []T
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var x T
		if json.Unmarshal(sc.Bytes(), &x) != nil {
			continue // a line being written
		}
		out = append(out, x)
	}
	return out, sc.Err()
}

// readSamples reads the samples written to path so far, as readJSONLines, with their
// times set.
func readSamples[T any, P interface {
	*T
	setTimes()
}](path string) ([]T, error) {
	out, err := readJSONLines[T](path)
	for i := range out {
		P(&out[i]).setTimes()
	}
	return out, err
}

// setTimes sets Start and End from the nanoseconds a JSON line carries.
func (s *Sample) setTimes() { s.Start, s.End = time.Unix(0, s.StartNS), time.Unix(0, s.EndNS) }

// clientProcess is a running helper process in the client namespace that writes JSON lines
// to path.
type clientProcess struct {
	proc *Process
	path string
}

// startClientProcess starts `labhelper ARGS... --out FILE` in the client namespace as
// client/NAME, FILE being NAME.jsonl in the run directory.
func (l *Lab) startClientProcess(name string, args ...string) (clientProcess, error) {
	path := filepath.Join(l.RunDir, name+".jsonl")
	argv := append(append([]string{l.HelperBin}, args...), "--out", path)
	p, err := l.startProcess(l.Client.NS, "client/"+name, argv...)
	if err != nil {
		return clientProcess{}, err
	}
	return clientProcess{proc: p, path: path}, nil
}

// stopAndRead ends the process (in-flight requests finish first), then returns what read
// reads: every line it wrote.
func stopAndRead[T any](c clientProcess, read func() ([]T, error)) ([]T, error) {
	if err := c.proc.Stop(5 * time.Second); err != nil {
		return nil, err
	}
	return read()
}

// waitForLines polls read every poll until cond holds of what it returns, or fails once
// timeout has passed, the process has exited or ctx is done; what names the process in
// the errors.
func waitForLines[T any](ctx context.Context, c clientProcess, what string, read func() ([]T, error), timeout, poll time.Duration, cond func([]T) bool) ([]T, error) {
	deadline := time.Now().Add(timeout)
	for {
		running := c.proc.Running() // before the read: an exited process has written all
		x, err := read()
		if err != nil {
			return x, err
		}
		if cond(x) {
			return x, nil
		}
		if time.Now().After(deadline) {
			return x, fmt.Errorf("%s: condition not met after %v (%d samples)", what, timeout, len(x))
		}
		if !running {
			return x, fmt.Errorf("%s exited: %w\n%s", what, c.proc.Err(), c.proc.LogTail(10))
		}
		select {
		case <-ctx.Done():
			return x, ctx.Err()
		case <-time.After(poll):
		}
	}
}
