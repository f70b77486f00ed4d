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
	"strings"
	"sync"
	"time"
)

// The sweep: the traffic recorder for many VIPs at once, one process in the client
// namespace (`labhelper sweep`, Lab.StartSweep). It either asks every target until its
// first good answer (how soon a new VIP answers), or records every target like the
// recorder (a fresh connection per request, every Every) to see many VIPs fail over at
// once.

// SweepOptions configure a sweep.
type SweepOptions struct {
	// URLs are the targets, each a VIP's HTTP service.
	URLs []string
	// UntilOK asks each target again and again, one request at a time and at most every
	// Every, until its first good answer, then leaves it; otherwise each target gets a
	// request every Every (concurrent, as the recorder's) for the whole Duration.
	UntilOK bool
	Every   time.Duration // default 10ms
	Timeout time.Duration // per request, default 1s
	// Parallel bounds the requests in flight of an UntilOK sweep (default 64): a request
	// to an address nobody holds yet waits for address resolution, and the client's
	// neighbour table is shared by every namespace of the machine.
	Parallel int
	Duration time.Duration // required, at most 30m
}

func (o *SweepOptions) validate() error {
	if o.Every == 0 {
		o.Every = 10 * time.Millisecond
	}
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	if o.Parallel == 0 {
		o.Parallel = 64
	}
	if len(o.URLs) == 0 || o.Every < time.Millisecond || o.Timeout <= 0 || o.Parallel < 1 || o.Duration <= 0 || o.Duration > 30*time.Minute {
		return fmt.Errorf("a sweep needs URLs, an interval of at least 1ms, a parallelism of at least 1 and a duration up to 30m: %d URLs, every %v, timeout %v, parallel %d, for %v",
			len(o.URLs), o.Every, o.Timeout, o.Parallel, o.Duration)
	}
	return nil
}

// SweepSample is one request of a sweep: Target is the index of its URL.
type SweepSample struct {
	Target int `json:"i"`
	Sample
}

// RunSweep is the sweep process (`labhelper sweep`, which StartSweep runs in the client
// namespace): it writes each request's result as a JSON line to w until o.Duration has
// passed, ctx is done or (UntilOK) every target has answered.
func RunSweep(ctx context.Context, w io.Writer, o SweepOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	hc := &http.Client{Timeout: o.Timeout, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: o.Timeout}).DialContext,
	}}
	results := make(chan SweepSample, 1024)
	done := make(chan error)
	go writeSamples(w, results, done)
	var wg sync.WaitGroup
	if o.UntilOK {
		slots := make(chan struct{}, o.Parallel)
		for i, url := range o.URLs {
			wg.Go(func() { untilOK(ctx, hc, i, url, o.Every, slots, results) })
		}
	} else {
		for i, url := range o.URLs {
			wg.Go(func() { recordTarget(ctx, hc, i, url, o.Every, results) })
		}
	}
	wg.Wait()
	close(results)
	return <-done
}

// untilOK asks url until its first good answer, a request at a time, each holding one of
// slots, at most every every.
func untilOK(ctx context.Context, hc *http.Client, i int, url string, every time.Duration, slots chan struct{}, results chan<- SweepSample) {
	for {
		select {
		case <-ctx.Done():
			return
		case slots <- struct{}{}:
		}
		start := time.Now()
		s := request(hc, url)
		<-slots
		results <- SweepSample{Target: i, Sample: s}
		if s.OK {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(every))):
		}
	}
}

// recordTarget starts a request to url every every, each in its own goroutine, until ctx
// is done, and waits for them.
func recordTarget(ctx context.Context, hc *http.Client, i int, url string, every time.Duration, results chan<- SweepSample) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		wg.Go(func() { results <- SweepSample{Target: i, Sample: request(hc, url)} })
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// writeSamples writes the samples as JSON lines, flushed every 50 ms, and sends the
// outcome to done once results is closed.
func writeSamples(w io.Writer, results <-chan SweepSample, done chan<- error) {
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
}

// Sweep is a running sweep process in the client namespace.
type Sweep struct {
	proc *Process
	path string
}

// StartSweep starts a sweep of o.URLs in the client namespace.
func (l *Lab) StartSweep(o SweepOptions) (*Sweep, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("sweep-%d", time.Now().UnixNano())
	targets := filepath.Join(l.RunDir, name+".targets")
	if err := os.WriteFile(targets, []byte(strings.Join(o.URLs, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	path := filepath.Join(l.RunDir, name+".jsonl")
	args := []string{l.HelperBin, "sweep", "--targets", targets, "--every", o.Every.String(), "--timeout", o.Timeout.String(),
		"--parallel", fmt.Sprint(o.Parallel), "--for", o.Duration.String(), "--out", path}
	if o.UntilOK {
		args = append(args, "--until-ok")
	}
	p, err := l.startProcess(l.Client.NS, "client/"+name, args...)
	if err != nil {
		return nil, err
	}
	return &Sweep{proc: p, path: path}, nil
}

// Samples returns what has been recorded so far, in the order written.
func (s *Sweep) Samples() ([]SweepSample, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var out []SweepSample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var x SweepSample
		if json.Unmarshal(sc.Bytes(), &x) != nil {
			continue // a line being written
		}
		x.Start, x.End = time.Unix(0, x.StartNS), time.Unix(0, x.EndNS)
		out = append(out, x)
	}
	return out, sc.Err()
}

// Running reports whether the sweep is still running (an UntilOK sweep ends by itself
// once every target has answered).
func (s *Sweep) Running() bool { return s.proc.Running() }

// Stop ends the sweep (in-flight requests finish first) and returns every sample.
func (s *Sweep) Stop() ([]SweepSample, error) {
	if err := s.proc.Stop(5 * time.Second); err != nil {
		return nil, err
	}
	return s.Samples()
}

// WaitFor polls the samples until cond holds or timeout passes.
func (s *Sweep) WaitFor(ctx context.Context, timeout time.Duration, cond func([]SweepSample) bool) ([]SweepSample, error) {
	deadline := time.Now().Add(timeout)
	for {
		running := s.proc.Running()
		x, err := s.Samples()
		if err != nil {
			return x, err
		}
		if cond(x) {
			return x, nil
		}
		if time.Now().After(deadline) {
			return x, fmt.Errorf("sweep: condition not met after %v (%d samples)", timeout, len(x))
		}
		if !running {
			return x, fmt.Errorf("sweep exited: %w\n%s", s.proc.Err(), s.proc.LogTail(10))
		}
		select {
		case <-ctx.Done():
			return x, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ByTarget splits a sweep's samples by target, each in order of start.
func ByTarget(samples []SweepSample, targets int) [][]Sample {
	out := make([][]Sample, targets)
	for _, s := range samples {
		if s.Target >= 0 && s.Target < targets {
			out[s.Target] = append(out[s.Target], s.Sample)
		}
	}
	for i := range out {
		sortByStart(out[i])
	}
	return out
}

// FirstAnswers is, per target, the end of its first good answer (zero when it never
// answered).
func FirstAnswers(samples []SweepSample, targets int) []time.Time {
	out := make([]time.Time, targets)
	for _, s := range samples {
		if s.Target < 0 || s.Target >= targets || !s.OK {
			continue
		}
		if out[s.Target].IsZero() || s.End.Before(out[s.Target]) {
			out[s.Target] = s.End
		}
	}
	return out
}
