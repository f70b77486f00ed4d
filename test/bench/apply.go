package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/test/lab"
)

// The apply benchmark: VirtualIPs applied one by one to a running Vigil; for each, the
// time from the create call returning to the client's first good answer from the VIP.

// Apply variants: with the failover benchmark's TCP check, or without any check.
const (
	ApplyTCPCheck = "tcp-check"
	ApplyNoChecks = "no-checks"
)

// ApplyVariants lists the variants in the order of a run.
var ApplyVariants = []string{ApplyTCPCheck, ApplyNoChecks}

// ApplyOptions configure an apply run.
type ApplyOptions struct {
	// Bin is the vigil binary; built from this tree when empty.
	Bin string
	// VIPs per variant.
	VIPs     int
	Variants []string
	// Pause between one VIP's answer and the next create.
	Pause time.Duration
	Logf  func(format string, args ...any)
}

// ApplyRow is one variant's figures (milliseconds from the create call's return).
type ApplyRow struct {
	Variant string  `json:"variant"`
	VIPs    int     `json:"vips"`
	P50ms   float64 `json:"p50_ms"`
	P95ms   float64 `json:"p95_ms"`
	P99ms   float64 `json:"p99_ms"`
	Maxms   float64 `json:"max_ms"`
	// OwnedP50ms and ReadyP50ms: when the owner, and Ready, were first seen in a watch.
	OwnedP50ms float64   `json:"owned_p50_ms"`
	OwnedP99ms float64   `json:"owned_p99_ms"`
	ReadyP50ms float64   `json:"ready_p50_ms"`
	ReadyP99ms float64   `json:"ready_p99_ms"`
	Unanswered int       `json:"unanswered,omitempty"`
	SamplesMS  []float64 `json:"samples_ms"`
}

// ApplyReport is docs/bench/apply.json.
type ApplyReport struct {
	Date      string     `json:"date"`
	Machine   string     `json:"machine"`
	Nodes     int        `json:"nodes"`
	GoalP99ms float64    `json:"goal_p99_ms"`
	Rows      []ApplyRow `json:"rows"`
}

// applyGoalP99 is the goal for the apply latency's p99.
const applyGoalP99 = 300 * time.Millisecond

// applyTimeout bounds the wait for one VIP's first answer.
const applyTimeout = 20 * time.Second

// RunApply starts Vigil on lab l and applies o.VIPs VirtualIPs one by one per variant.
func RunApply(ctx context.Context, l *lab.Lab, o ApplyOptions) (ApplyReport, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	rep := ApplyReport{Date: time.Now().UTC().Format(time.DateOnly), Machine: lab.Machine(), Nodes: len(l.Nodes),
		GoalP99ms: float64(applyGoalP99 / time.Millisecond)}
	if o.Bin == "" {
		bin, err := l.BuildVigil()
		if err != nil {
			return rep, err
		}
		o.Bin = bin
	}
	if _, err := l.StartController(o.Bin); err != nil {
		return rep, err
	}
	for _, n := range l.Nodes {
		if _, err := l.StartAgent(o.Bin, n.Name); err != nil {
			return rep, err
		}
	}
	if err := l.WaitForVigil(time.Minute); err != nil {
		return rep, errors.Join(err, exitedAgents(l))
	}
	w, err := watchVIPs(ctx, l)
	if err != nil {
		return rep, err
	}
	defer w.Stop()
	for vi, variant := range o.Variants {
		row, err := applyVariant(ctx, l, o, w, variant, vi*o.VIPs)
		if err != nil {
			return rep, err
		}
		rep.Rows = append(rep.Rows, row)
	}
	return rep, nil
}

// applyVariant applies o.VIPs VirtualIPs of a variant one by one, the first at lab VIP
// index first.
func applyVariant(ctx context.Context, l *lab.Lab, o ApplyOptions, w *vipWatch, variant string, first int) (ApplyRow, error) {
	row := ApplyRow{Variant: variant, VIPs: o.VIPs}
	c, err := l.KubeClient()
	if err != nil {
		return row, err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: lab.DialerIn(l.Client.NS), DisableKeepAlives: true}}
	var answers, owned, ready []time.Duration
	for i := range o.VIPs {
		addr := lab.VIPv4(first + i)
		v := &vigilv1.VirtualIP{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("apply-%s-%02d", variant, i)},
			Spec: vigilv1.VirtualIPSpec{Address: addr.String()}}
		switch variant {
		case ApplyTCPCheck:
			v.Spec.HealthChecks = []vigilv1.HealthCheck{{Name: "web", TCP: &vigilv1.TCPCheck{Host: "127.0.0.1", Port: lab.HTTPPort}}}
		case ApplyNoChecks:
		default:
			return row, fmt.Errorf("unknown apply variant %q (want %s or %s)", variant, ApplyTCPCheck, ApplyNoChecks)
		}
		// The client asks from before the create on: a request waiting for the address's
		// resolution is answered the moment the owner announces it.
		probe := startFirstAnswer(ctx, hc, fmt.Sprintf("http://%s/", addr), 10*time.Millisecond, applyTimeout)
		if err := c.Create(ctx, v); err != nil {
			probe.stop()
			return row, fmt.Errorf("creating VirtualIP %s: %w", v.Name, err)
		}
		created := time.Now()
		at, ok := probe.wait()
		if !ok {
			row.Unanswered++
			o.Logf("%s %d/%d: %s never answered within %v", variant, i+1, o.VIPs, addr, applyTimeout)
			continue
		}
		answers = append(answers, max(at.Sub(created), 0))
		ot, rt := w.times([]string{v.Name})
		if !ot[0].IsZero() {
			owned = append(owned, max(ot[0].Sub(created), 0))
		}
		if rdy := waitReady(ctx, w, v.Name, 5*time.Second); !rdy.IsZero() {
			ready = append(ready, max(rdy.Sub(created), 0))
		} else if !rt[0].IsZero() {
			ready = append(ready, max(rt[0].Sub(created), 0))
		}
		ownedAfter := "never"
		if !ot[0].IsZero() {
			ownedAfter = ot[0].Sub(created).Round(time.Millisecond).String()
		}
		o.Logf("%s %d/%d: %s answered %v after the create returned (owner published after %s)", variant, i+1, o.VIPs, addr,
			answers[len(answers)-1].Round(time.Millisecond), ownedAfter)
		if err := sleepCtx(ctx, o.Pause); err != nil {
			return row, err
		}
	}
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }
	row.P50ms, row.P95ms = ms(lab.Percentile(answers, 50)), ms(lab.Percentile(answers, 95))
	row.P99ms, row.Maxms = ms(lab.Percentile(answers, 99)), ms(lab.Percentile(answers, 100))
	row.OwnedP50ms, row.OwnedP99ms = ms(lab.Percentile(owned, 50)), ms(lab.Percentile(owned, 99))
	row.ReadyP50ms, row.ReadyP99ms = ms(lab.Percentile(ready, 50)), ms(lab.Percentile(ready, 99))
	for _, a := range answers {
		row.SamplesMS = append(row.SamplesMS, ms(a))
	}
	o.Logf("%s: answered p50 %.1f ms, p99 %.1f ms, max %.1f ms; owner published p50 %.1f ms (p99 %.1f), Ready p50 %.1f ms",
		variant, row.P50ms, row.P99ms, row.Maxms, row.OwnedP50ms, row.OwnedP99ms, row.ReadyP50ms)
	return row, nil
}

// waitReady waits until the watch has seen the VirtualIP Ready, and returns when it did
// (zero after timeout).
func waitReady(ctx context.Context, w *vipWatch, name string, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, ready := w.times([]string{name}); !ready[0].IsZero() {
			return ready[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Time{}
}

// firstAnswer asks a URL every interval (each request on a fresh connection, concurrently)
// until one answers.
type firstAnswer struct {
	cancel context.CancelFunc
	done   chan struct{}
	at     time.Time
	ok     bool
}

func startFirstAnswer(ctx context.Context, hc *http.Client, url string, every, timeout time.Duration) *firstAnswer {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	f := &firstAnswer{cancel: cancel, done: make(chan struct{})}
	var once sync.Once
	go func() {
		var wg sync.WaitGroup
		defer func() {
			cancel()
			wg.Wait()
			once.Do(func() { close(f.done) })
		}()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			wg.Go(func() {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if err != nil {
					return
				}
				resp, err := hc.Do(req)
				if err != nil {
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					end := time.Now()
					once.Do(func() {
						f.at, f.ok = end, true
						close(f.done)
					})
					cancel()
				}
			})
			select {
			case <-ctx.Done():
				return
			case <-f.done:
				return
			case <-tick.C:
			}
		}
	}()
	return f
}

// wait returns when the first answer came, or false if none came in time.
func (f *firstAnswer) wait() (time.Time, bool) {
	<-f.done
	return f.at, f.ok
}

func (f *firstAnswer) stop() {
	f.cancel()
	<-f.done
}
