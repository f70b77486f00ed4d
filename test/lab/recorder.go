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
	"syscall"
	"time"
)

// Sample is one request of the traffic recorder.
type Sample struct {
	Start time.Time `json:"-"`
	End   time.Time `json:"-"`
	OK    bool      `json:"ok"`
	Node  string    `json:"node,omitempty"` // who answered
	Err   string    `json:"err,omitempty"`

	StartNS int64 `json:"s"`
	EndNS   int64 `json:"e"`
}

// RecordOptions bound a recording.
type RecordOptions struct {
	URL      string
	Every    time.Duration // default 10ms
	Timeout  time.Duration // per request, default 1s
	Duration time.Duration // required, at most 30m
}

// MaxRecording bounds a recorder's run: load in the lab is bounded in time.
const MaxRecording = time.Hour

func (o *RecordOptions) validate() error {
	if o.Every == 0 {
		o.Every = 10 * time.Millisecond
	}
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	if o.URL == "" || o.Every < time.Millisecond || o.Timeout <= 0 || o.Duration <= 0 || o.Duration > MaxRecording {
		return fmt.Errorf("recorder needs a URL, an interval of at least 1ms and a duration up to %v: %+v", MaxRecording, *o)
	}
	return nil
}

// RunRecorder is the recorder process (`labhelper record`, which StartRecorder runs in the
// client namespace): every o.Every it opens a fresh TCP connection to o.URL and sends one
// GET, writing each result as a JSON line to w, until o.Duration has passed or ctx is done.
// Requests run concurrently, so a hanging one never delays the next. It lives here, beside
// Recorder, which reads those lines back.
func RunRecorder(ctx context.Context, w io.Writer, o RecordOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	hc := &http.Client{Timeout: o.Timeout, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: o.Timeout}).DialContext,
	}}
	results := make(chan Sample, 1024)
	var wg sync.WaitGroup
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
	tick := time.NewTicker(o.Every)
	defer tick.Stop()
	for {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- request(hc, o.URL)
		}()
		select {
		case <-ctx.Done():
			wg.Wait()
			close(results)
			return <-done
		case <-tick.C:
		}
	}
}

func request(hc *http.Client, url string) Sample {
	s := Sample{StartNS: time.Now().UnixNano()}
	resp, err := hc.Get(url)
	if err == nil {
		var body []byte
		body, err = io.ReadAll(io.LimitReader(resp.Body, 256))
		_ = resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %s", resp.Status)
		}
		s.Node = strings.TrimSpace(string(body))
	}
	s.EndNS = time.Now().UnixNano()
	if err != nil {
		s.Err = shortError(err)
	} else {
		s.OK = true
	}
	return s
}

// shortError names the cause of a failed request in a word or two.
func shortError(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return err.Error()
}

// Recorder is a running recorder process in the client namespace.
type Recorder struct {
	proc *Process
	path string
}

// StartRecorder starts the traffic recorder in the client namespace against url.
func (l *Lab) StartRecorder(o RecordOptions) (*Recorder, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("recorder-%d", time.Now().UnixNano())
	path := filepath.Join(l.RunDir, name+".jsonl")
	p, err := l.startProcess(l.Client.NS, "client/"+name, l.HelperBin, "record",
		"--url", o.URL, "--every", o.Every.String(), "--timeout", o.Timeout.String(),
		"--for", o.Duration.String(), "--out", path)
	if err != nil {
		return nil, err
	}
	return &Recorder{proc: p, path: path}, nil
}

// Samples returns what has been recorded so far, in order of start.
func (r *Recorder) Samples() ([]Sample, error) {
	f, err := os.Open(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var out []Sample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s Sample
		if json.Unmarshal(sc.Bytes(), &s) != nil {
			continue // a line being written
		}
		s.Start, s.End = time.Unix(0, s.StartNS), time.Unix(0, s.EndNS)
		out = append(out, s)
	}
	sortByStart(out)
	return out, sc.Err()
}

// Stop ends the recording (in-flight requests finish first) and returns every sample.
func (r *Recorder) Stop() ([]Sample, error) {
	if err := r.proc.Stop(5 * time.Second); err != nil {
		return nil, err
	}
	return r.Samples()
}

// WaitFor polls the samples until cond holds or timeout passes.
func (r *Recorder) WaitFor(timeout time.Duration, cond func([]Sample) bool) ([]Sample, error) {
	deadline := time.Now().Add(timeout)
	for {
		s, err := r.Samples()
		if err != nil {
			return s, err
		}
		if cond(s) {
			return s, nil
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("recorder: condition not met after %v (%d samples)", timeout, len(s))
		}
		if !r.proc.Running() {
			return s, fmt.Errorf("recorder exited: %w\n%s", r.proc.Err(), r.proc.LogTail(10))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
