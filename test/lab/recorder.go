package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
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
	return sendRequests(ctx, w, o.Duration, o.Timeout, func(ctx context.Context, hc *http.Client, results chan<- Sample) {
		recordEvery(ctx, hc, o.URL, o.Every, func(s Sample) { results <- s })
	})
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
	clientProcess
}

// StartRecorder starts the traffic recorder in the client namespace against url.
func (l *Lab) StartRecorder(o RecordOptions) (*Recorder, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	p, err := l.startClientProcess(fmt.Sprintf("recorder-%d", time.Now().UnixNano()), "record",
		"--url", o.URL, "--every", o.Every.String(), "--timeout", o.Timeout.String(), "--for", o.Duration.String())
	if err != nil {
		return nil, err
	}
	return &Recorder{p}, nil
}

// Samples returns what has been recorded so far, in order of start.
func (r *Recorder) Samples() ([]Sample, error) {
	out, err := readSamples[Sample](r.path)
	sortByStart(out)
	return out, err
}

// Stop ends the recording (in-flight requests finish first) and returns every sample.
func (r *Recorder) Stop() ([]Sample, error) {
	return stopAndRead(r.clientProcess, r.Samples)
}

// WaitFor polls the samples until cond holds or timeout passes.
func (r *Recorder) WaitFor(timeout time.Duration, cond func([]Sample) bool) ([]Sample, error) {
	return waitForLines(context.Background(), r.clientProcess, "recorder", r.Samples, timeout, 20*time.Millisecond, cond)
}
