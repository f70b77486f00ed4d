package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"vigil.dev/vigil/test/lab"
)

// Failover scenarios.
const (
	ScenarioNodeCrash   = "node-crash"   // kill -9 everything on the owner and cut its link
	ScenarioServiceDown = "service-down" // the owner's HTTP service dies; its health check fails
	ScenarioPlanned     = "planned"      // graceful stop of the system on the owner
)

// Scenarios lists every scenario.
var Scenarios = []string{ScenarioNodeCrash, ScenarioServiceDown, ScenarioPlanned}

// FailoverResult is one row of docs/bench/failover.json.
type FailoverResult struct {
	System   string `json:"system"`
	Scenario string `json:"scenario"`
	// Nodes is the lab's size; 0 in rows written before it was recorded: 3.
	Nodes          int     `json:"nodes,omitempty"`
	Trials         int     `json:"trials"`
	P50ms          float64 `json:"p50_ms"`
	P95ms          float64 `json:"p95_ms"`
	P99ms          float64 `json:"p99_ms"`
	Maxms          float64 `json:"max_ms"`
	FailedRequests int     `json:"failed_requests"`
	FalseFailovers int     `json:"false_failovers"`
	// StagesMS is the median offset from the fault of each stage of the failover, in
	// milliseconds, for systems that log them (StageTracer).
	StagesMS map[string]float64 `json:"stages_ms,omitempty"`
	Date     string             `json:"date"`
	Machine  string             `json:"machine"`

	dualAnswers int
}

// FailoverOptions configure a failover benchmark.
type FailoverOptions struct {
	Trials    int
	Nodes     int // the lab's size, recorded in the results
	Scenarios []string
	VIP       string // URL of the VIP's HTTP service
	Logf      func(string, ...any)
}

// RunFailover runs every scenario Trials times against sys on lab l. Before each trial
// it waits until one node has answered the VIP steadily for sys.Settle() (the owner), injects the
// fault on the owner, and records until another node has answered for 1 s.
func RunFailover(ctx context.Context, l *lab.Lab, sys FailoverSystem, o FailoverOptions) ([]FailoverResult, error) {
	var results []FailoverResult
	for _, scenario := range o.Scenarios {
		if !slices.Contains(Scenarios, scenario) {
			return results, fmt.Errorf("unknown scenario %q (want %s)", scenario, strings.Join(Scenarios, ", "))
		}
		r := FailoverResult{System: sys.Name(), Scenario: scenario, Nodes: o.Nodes, Trials: o.Trials, Date: time.Now().UTC().Format(time.DateOnly), Machine: lab.Machine()}
		var outages []time.Duration
		var stages []Stages
		for trial := 1; trial <= o.Trials; trial++ {
			if err := ctx.Err(); err != nil {
				return results, err
			}
			out, err := runTrial(l, sys, scenario, o.VIP)
			if err != nil {
				return results, fmt.Errorf("%s %s trial %d: %w", sys.Name(), scenario, trial, err)
			}
			outages = append(outages, out.Duration)
			r.FailedRequests += out.Failed
			r.FalseFailovers += max(out.Moves-1, 0)
			r.dualAnswers += out.DualAnswers
			failures := ""
			if out.Failed > 0 {
				failures = " (" + out.Failures(out.fault) + ")"
			}
			o.Logf("%s %s trial %d/%d: %s -> %s, outage %v, %d failed%s, %d moves", sys.Name(), scenario, trial, o.Trials,
				out.from, out.NewOwner, out.Duration.Round(time.Millisecond), out.Failed, failures, out.Moves)
			if tracer, ok := sys.(StageTracer); ok && scenario != ScenarioPlanned {
				st, err := tracer.Stages(l, StageTrial{Fault: out.fault, Owner: out.from, NewOwner: out.NewOwner, Answered: out.FirstOKAfter})
				if err != nil {
					return results, fmt.Errorf("%s %s trial %d: reading the stages from the logs: %w", sys.Name(), scenario, trial, err)
				}
				stages = append(stages, st)
				o.Logf("  stages: %s", FormatStages(MedianStages([]Stages{st})))
			}
		}
		if len(stages) > 0 {
			r.StagesMS = MedianStages(stages)
			o.Logf("%s %s median stages: %s", sys.Name(), scenario, FormatStages(r.StagesMS))
		}
		ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }
		r.P50ms, r.P95ms, r.P99ms = ms(lab.Percentile(outages, 50)), ms(lab.Percentile(outages, 95)), ms(lab.Percentile(outages, 99))
		r.Maxms = ms(lab.Percentile(outages, 100))
		results = append(results, r)
	}
	return results, nil
}

type trialOutage struct {
	lab.Outage
	from  string
	fault time.Time
}

func runTrial(l *lab.Lab, sys FailoverSystem, scenario, vip string) (trialOutage, error) {
	rec, err := l.StartRecorder(lab.RecordOptions{URL: vip, Duration: 2 * time.Minute})
	if err != nil {
		return trialOutage{}, err
	}
	defer func() { _, _ = rec.Stop() }()
	steady := int(sys.Settle() / (10 * time.Millisecond))
	samples, err := rec.WaitFor(60*time.Second+sys.Settle(), func(s []lab.Sample) bool { return steadyOwner(s, steady) != "" })
	if err != nil {
		return trialOutage{}, fmt.Errorf("the VIP never answered steadily from one node: %w (last answers: %s)", err, lastAnswers(samples, 5))
	}
	owner := steadyOwner(samples, steady)
	fault := time.Now()
	switch scenario {
	case ScenarioNodeCrash:
		err = l.CrashNode(owner)
	case ScenarioServiceDown:
		err = l.StopService(owner)
	case ScenarioPlanned:
		err = sys.StopNode(l, owner)
	}
	if err != nil {
		return trialOutage{}, fmt.Errorf("injecting %s on %s: %w", scenario, owner, err)
	}
	_, waitErr := rec.WaitFor(60*time.Second, func(s []lab.Sample) bool {
		o := lab.AnalyzeFault(s, fault, owner)
		return o.Recovered && len(s) > 0 && s[len(s)-1].Start.Sub(o.FirstOKAfter) > time.Second
	})
	samples, err = rec.Stop()
	if err != nil {
		return trialOutage{}, err
	}
	out := trialOutage{lab.AnalyzeFault(samples, fault, owner), owner, fault}
	// Restore the owner whatever happened, so the next trial starts whole.
	var restoreErr error
	switch scenario {
	case ScenarioNodeCrash:
		restoreErr = errors.Join(l.RestoreNode(owner), sys.StartNode(l, owner))
	case ScenarioServiceDown:
		restoreErr = l.StartService(owner)
	case ScenarioPlanned:
		restoreErr = sys.StartNode(l, owner)
	}
	if waitErr != nil {
		return out, fmt.Errorf("no other node answered after %s on %s: %w (last answers: %s)", scenario, owner, waitErr, lastAnswers(samples, 5))
	}
	return out, restoreErr
}

// steadyOwner is the node that answered the last n requests, all successfully, or "".
func steadyOwner(s []lab.Sample, n int) string {
	if len(s) < n {
		return ""
	}
	node := s[len(s)-1].Node
	for _, x := range s[len(s)-n:] {
		if !x.OK || x.Node != node {
			return ""
		}
	}
	return node
}

func lastAnswers(s []lab.Sample, n int) string {
	var parts []string
	for _, x := range s[max(len(s)-n, 0):] {
		if x.OK {
			parts = append(parts, x.Node)
		} else {
			parts = append(parts, x.Err)
		}
	}
	return strings.Join(parts, ", ")
}
