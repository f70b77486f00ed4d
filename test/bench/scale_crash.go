package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"vigil.dev/vigil/test/lab"
)

// crashOutcome is one crash of a node owning many VIPs.
type crashOutcome struct {
	node    string
	outages []time.Duration // per VIP, as the failover benchmark measures one
	failed  int
	api     APICounts // Vigil's requests from the crash until every VIP answered elsewhere
}

// scaleCrashes crashes o.Crashes nodes in turn, each owning about o.CrashVIPs VIPs, and
// measures how soon each of their VIPs answers from another node.
func scaleCrashes(ctx context.Context, l *lab.Lab, o ScaleOptions, vips []scaleVIP, w *vipWatch, r *ScaleRun) error {
	crashed := map[string]bool{}
	var outages []time.Duration
	var api []APICounts
	for trial := 1; trial <= o.Crashes; trial++ {
		owners, _ := w.owners()
		node, owned := pickCrashNode(owners, l, crashed, o.CrashVIPs)
		if node == "" {
			return errors.New("no node left to crash")
		}
		crashed[node] = true
		var targets []scaleVIP
		for _, v := range vips {
			if slices.Contains(owned, v.name) {
				targets = append(targets, v)
			}
		}
		out, err := crashTrial(ctx, l, o, node, targets)
		if err != nil {
			return fmt.Errorf("crash %d (%s): %w", trial, node, err)
		}
		outages = append(outages, out.outages...)
		api = append(api, out.api)
		r.CrashVIPs = append(r.CrashVIPs, len(targets))
		r.CrashFailed += out.failed
		o.Logf("crash %d/%d of %s owning %d VIPs: outage p50 %v, max %v; %d failed requests; Vigil's API requests %.1f/s (peak %d in a second), %d writes",
			trial, o.Crashes, node, len(targets), lab.Percentile(out.outages, 50).Round(time.Millisecond),
			lab.Percentile(out.outages, 100).Round(time.Millisecond), out.failed, out.api.PerSecond(out.api.Total), out.api.PeakSecond, out.api.Writes)
	}
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }
	r.CrashTrials, r.CrashEveryMS = o.Crashes, float64(o.CrashEvery)/float64(time.Millisecond)
	r.CrashP50ms, r.CrashP99ms, r.CrashMaxms = ms(lab.Percentile(outages, 50)), ms(lab.Percentile(outages, 99)), ms(lab.Percentile(outages, 100))
	r.Crash20P99ms = &r.CrashP99ms
	r.CrashAPIByWhat = map[string]int{}
	var total int
	var window time.Duration
	for _, a := range api {
		total += a.Total
		window += a.To.Sub(a.From)
		r.CrashAPIPeakPerS = max(r.CrashAPIPeakPerS, a.PeakSecond)
		r.CrashAPIWrites += a.Writes
		for what, n := range a.ByWhat {
			r.CrashAPIByWhat[what] += n
		}
	}
	if window > 0 {
		r.CrashAPIPerS = round1(float64(total) / window.Seconds())
	}
	return nil
}

// pickCrashNode picks the node, not crashed before, whose count of owned VIPs is nearest
// want (the first in name order among equals), and returns its VIPs.
func pickCrashNode(owners map[string]string, l *lab.Lab, crashed map[string]bool, want int) (string, []string) {
	byNode := map[string][]string{}
	for _, vip := range slices.Sorted(maps.Keys(owners)) {
		byNode[owners[vip]] = append(byNode[owners[vip]], vip)
	}
	best, bestDiff := "", math.MaxInt
	for _, n := range l.Nodes {
		if crashed[n.Name] || len(byNode[n.Name]) == 0 {
			continue
		}
		if d := abs(len(byNode[n.Name]) - want); d < bestDiff {
			best, bestDiff = n.Name, d
		}
	}
	return best, byNode[best]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// crashTrial records the node's VIPs from the client, crashes the node once every VIP
// answers steadily from it, waits until each has answered from another node for a second,
// and restores the node with its agent.
func crashTrial(ctx context.Context, l *lab.Lab, o ScaleOptions, node string, targets []scaleVIP) (crashOutcome, error) {
	out := crashOutcome{node: node}
	urls := make([]string, len(targets))
	for i, t := range targets {
		urls[i] = t.url
	}
	sweep, err := l.StartSweep(lab.SweepOptions{URLs: urls, Every: o.CrashEvery, Timeout: time.Second, Duration: 2 * time.Minute})
	if err != nil {
		return out, err
	}
	defer func() { _, _ = sweep.Stop() }()
	steady := int(time.Second / o.CrashEvery)
	if _, err := pollSweep(ctx, sweep, time.Minute, func(s []lab.SweepSample) bool {
		for _, samples := range lab.ByTarget(s, len(urls)) {
			if steadyOwner(samples, steady) != node {
				return false
			}
		}
		return true
	}); err != nil {
		return out, fmt.Errorf("the VIPs of %s never answered steadily from it: %w", node, err)
	}
	fault := time.Now()
	if err := l.CrashNode(node); err != nil {
		return out, err
	}
	_, waitErr := pollSweep(ctx, sweep, time.Minute, func(s []lab.SweepSample) bool {
		for _, samples := range lab.ByTarget(s, len(urls)) {
			a := lab.AnalyzeFault(samples, fault, node)
			if !a.Recovered || samples[len(samples)-1].Start.Sub(a.FirstOKAfter) < time.Second {
				return false
			}
		}
		return true
	})
	samples, err := sweep.Stop()
	if err != nil {
		return out, err
	}
	var last time.Time
	for _, s := range lab.ByTarget(samples, len(urls)) {
		a := lab.AnalyzeFault(s, fault, node)
		out.outages = append(out.outages, a.Duration)
		out.failed += a.Failed
		if a.FirstOKAfter.After(last) {
			last = a.FirstOKAfter
		}
	}
	restoreErr := errors.Join(l.RestoreNode(node), restartAgent(l, o.Bin, node))
	if waitErr != nil {
		return out, errors.Join(fmt.Errorf("not every VIP of %s answered from another node: %w", node, waitErr), restoreErr)
	}
	time.Sleep(time.Second) // the window's last requests reach the log
	events, _, err := l.ReadAuditLog()
	if err != nil {
		return out, err
	}
	out.api = CountAPI(events, fault, maxTime(last, fault.Add(time.Second)))
	if restoreErr != nil {
		return out, restoreErr
	}
	// The restored agent joins before the next crash.
	return out, errors.Join(l.WaitForVigil(time.Minute), sleepCtx(ctx, 5*time.Second))
}

// restartAgent starts the node's agent again after a crash.
func restartAgent(l *lab.Lab, bin, node string) error {
	_, err := l.StartAgent(bin, node)
	return err
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sweepPoll is how often a running sweep's recording is read back while waiting: each
// read parses the whole file (thousands of lines a second at 10 ms per VIP), and this
// process shares the machine with what it measures. The samples carry their own times,
// so polling less often delays only the wait, not what is measured.
const sweepPoll = 500 * time.Millisecond

// pollSweep reads the sweep's samples every sweepPoll until cond holds, the sweep exits or
// timeout passes.
func pollSweep(ctx context.Context, s *lab.Sweep, timeout time.Duration, cond func([]lab.SweepSample) bool) ([]lab.SweepSample, error) {
	deadline := time.Now().Add(timeout)
	for {
		running := s.Running()
		x, err := s.Samples()
		if err != nil {
			return x, err
		}
		if cond(x) {
			return x, nil
		}
		if !running {
			return x, fmt.Errorf("the sweep exited (%d samples)", len(x))
		}
		if time.Now().After(deadline) {
			return x, fmt.Errorf("condition not met after %v (%d samples)", timeout, len(x))
		}
		if err := sleepCtx(ctx, sweepPoll); err != nil {
			return x, err
		}
	}
}
