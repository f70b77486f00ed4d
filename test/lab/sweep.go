package lab

import (
	"context"
	"fmt"
	"io"
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
	return sendRequests(ctx, w, o.Duration, o.Timeout, func(ctx context.Context, hc *http.Client, results chan<- SweepSample) {
		var wg sync.WaitGroup
		defer wg.Wait()
		if o.UntilOK {
			slots := make(chan struct{}, o.Parallel)
			for i, url := range o.URLs {
				wg.Go(func() { untilOK(ctx, hc, i, url, o.Every, slots, results) })
			}
			return
		}
		for i, url := range o.URLs {
			wg.Go(func() {
				recordEvery(ctx, hc, url, o.Every, func(s Sample) { results <- SweepSample{Target: i, Sample: s} })
			})
		}
	})
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

// Sweep is a running sweep process in the client namespace.
type Sweep struct {
	clientProcess
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
	args := []string{"sweep", "--targets", targets, "--every", o.Every.String(), "--timeout", o.Timeout.String(),
		"--parallel", fmt.Sprint(o.Parallel), "--for", o.Duration.String()}
	if o.UntilOK {
		args = append(args, "--until-ok")
	}
	p, err := l.startClientProcess(name, args...)
	if err != nil {
		return nil, err
	}
	return &Sweep{p}, nil
}

// Samples returns what has been recorded so far, in the order written.
func (s *Sweep) Samples() ([]SweepSample, error) {
	return readSamples[SweepSample](s.path)
}

// Running reports whether the sweep is still running (an UntilOK sweep ends by itself
// once every target has answered).
func (s *Sweep) Running() bool { return s.proc.Running() }

// Stop ends the sweep (in-flight requests finish first) and returns every sample.
func (s *Sweep) Stop() ([]SweepSample, error) {
	return stopAndRead(s.clientProcess, s.Samples)
}

// WaitFor polls the samples until cond holds or timeout passes.
func (s *Sweep) WaitFor(ctx context.Context, timeout time.Duration, cond func([]SweepSample) bool) ([]SweepSample, error) {
	return waitForLines(ctx, s.clientProcess, "sweep", s.Samples, timeout, 50*time.Millisecond, cond)
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
