package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// FailoverSystem is a VIP failover implementation the benchmark can drive in the lab.
type FailoverSystem interface {
	Name() string
	NeedsControlPlane() bool
	// Start starts the system on every node and makes it serve the VIP.
	Start(l *Lab) error
	// StartNode (re)starts the system's processes on one node.
	StartNode(l *Lab, node string) error
	// StopNode stops the system on one node gracefully (a planned move).
	StopNode(l *Lab, node string) error
	// Settle is how long the VIP must have answered from one node before a fault, so that
	// a node restored after the previous trial has rejoined (and any move back is over).
	Settle() time.Duration
}

// Failover scenarios.
const (
	ScenarioNodeCrash   = "node-crash"   // kill -9 everything on the owner and cut its link
	ScenarioServiceDown = "service-down" // the owner's HTTP service dies; its health check fails
	ScenarioPlanned     = "planned"      // graceful stop of the system on the owner
)

// Scenarios lists every scenario.
var Scenarios = []string{ScenarioNodeCrash, ScenarioServiceDown, ScenarioPlanned}

// BenchResult is one row of docs/bench/failover.json.
type BenchResult struct {
	System         string  `json:"system"`
	Scenario       string  `json:"scenario"`
	Trials         int     `json:"trials"`
	P50ms          float64 `json:"p50_ms"`
	P95ms          float64 `json:"p95_ms"`
	P99ms          float64 `json:"p99_ms"`
	Maxms          float64 `json:"max_ms"`
	FailedRequests int     `json:"failed_requests"`
	FalseFailovers int     `json:"false_failovers"`
	Date           string  `json:"date"`
	Machine        string  `json:"machine"`

	dualAnswers int
}

// BenchOptions configure a failover benchmark.
type BenchOptions struct {
	Trials    int
	Scenarios []string
	VIP       string // URL of the VIP's HTTP service
	Logf      func(string, ...any)
}

// RunFailoverBench runs every scenario Trials times against sys on lab l. Before each trial
// it waits until one node has answered the VIP steadily for sys.Settle() (the owner), injects the
// fault on the owner, and records until another node has answered for 1 s.
func RunFailoverBench(ctx context.Context, l *Lab, sys FailoverSystem, o BenchOptions) ([]BenchResult, error) {
	var results []BenchResult
	for _, scenario := range o.Scenarios {
		if !slices.Contains(Scenarios, scenario) {
			return results, fmt.Errorf("unknown scenario %q (want %s)", scenario, strings.Join(Scenarios, ", "))
		}
		r := BenchResult{System: sys.Name(), Scenario: scenario, Trials: o.Trials, Date: time.Now().UTC().Format(time.DateOnly), Machine: Machine()}
		var outages []time.Duration
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
		}
		ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }
		r.P50ms, r.P95ms, r.P99ms = ms(Percentile(outages, 50)), ms(Percentile(outages, 95)), ms(Percentile(outages, 99))
		r.Maxms = ms(Percentile(outages, 100))
		results = append(results, r)
	}
	return results, nil
}

type trialOutage struct {
	Outage
	from  string
	fault time.Time
}

func runTrial(l *Lab, sys FailoverSystem, scenario, vip string) (trialOutage, error) {
	rec, err := l.StartRecorder(RecordOptions{URL: vip, Duration: 2 * time.Minute})
	if err != nil {
		return trialOutage{}, err
	}
	defer func() { _, _ = rec.Stop() }()
	steady := int(sys.Settle() / (10 * time.Millisecond))
	samples, err := rec.WaitFor(60*time.Second+sys.Settle(), func(s []Sample) bool { return steadyOwner(s, steady) != "" })
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
	_, waitErr := rec.WaitFor(60*time.Second, func(s []Sample) bool {
		o := AnalyzeFault(s, fault, owner)
		return o.Recovered && len(s) > 0 && s[len(s)-1].Start.Sub(o.FirstOKAfter) > time.Second
	})
	samples, err = rec.Stop()
	if err != nil {
		return trialOutage{}, err
	}
	out := trialOutage{AnalyzeFault(samples, fault, owner), owner, fault}
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
func steadyOwner(s []Sample, n int) string {
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

func lastAnswers(s []Sample, n int) string {
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

// Machine describes this machine for benchmark records.
func Machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d cores, %s, Linux %s", runtime.NumCPU(), model, strings.TrimSpace(string(kernel)))
}

// MergeResults replaces the rows of the same system and scenario in old with fresh ones.
func MergeResults(old, fresh []BenchResult) []BenchResult {
	out := slices.DeleteFunc(slices.Clone(old), func(o BenchResult) bool {
		return slices.ContainsFunc(fresh, func(f BenchResult) bool { return f.System == o.System && f.Scenario == o.Scenario })
	})
	out = append(out, fresh...)
	slices.SortStableFunc(out, func(a, b BenchResult) int {
		if c := strings.Compare(a.Scenario, b.Scenario); c != 0 {
			return c
		}
		return strings.Compare(a.System, b.System)
	})
	return out
}

// ReadResults reads a failover.json file; a missing file is an empty list.
func ReadResults(path string) ([]BenchResult, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []BenchResult
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return out, nil
}

// WriteResults writes the results as indented JSON.
func WriteResults(path string, results []BenchResult) error {
	b, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Table renders results as a Markdown table.
func Table(results []BenchResult) string {
	var b strings.Builder
	b.WriteString("| scenario | system | trials | p50 ms | p95 ms | p99 ms | max ms | failed requests | false failovers | date |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %d | %.1f | %.1f | %.1f | %.1f | %d | %d | %s |\n",
			r.Scenario, r.System, r.Trials, r.P50ms, r.P95ms, r.P99ms, r.Maxms, r.FailedRequests, r.FalseFailovers, r.Date)
	}
	return b.String()
}

const (
	docTableStart = "<!-- failover table: generated by make bench-failover -->"
	docTableEnd   = "<!-- end of failover table -->"
)

// UpdateBenchmarksDoc regenerates the failover table between its markers in the doc,
// creating the doc when missing.
func UpdateBenchmarksDoc(path string, results []BenchResult) error {
	var table strings.Builder
	table.WriteString(docTableStart + "\n")
	table.WriteString(Table(results))
	machines := map[string]bool{}
	for _, r := range results {
		machines[r.Machine] = true
	}
	for m := range machines {
		fmt.Fprintf(&table, "\nMachine: %s\n", m)
	}
	table.WriteString(docTableEnd)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b = []byte("# Benchmarks\n\n" + docTableStart + "\n" + docTableEnd + "\n")
	} else if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, docTableStart), strings.Index(s, docTableEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no failover table markers", path)
	}
	s = s[:i] + table.String() + s[j+len(docTableEnd):]
	return os.WriteFile(path, []byte(s), 0o644)
}
