package lab

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

func sortByStart(s []Sample) {
	slices.SortStableFunc(s, func(a, b Sample) int { return a.Start.Compare(b.Start) })
}

// Outage is what a client saw around one fault.
type Outage struct {
	// LastOKBefore is the start of the last successful request started before the fault.
	LastOKBefore time.Time
	// FirstOKAfter is the start of the first successful request after the fault answered
	// by a node other than the one the fault hit (the new owner).
	FirstOKAfter time.Time
	// Recovered is false when no other node answered after the fault.
	Recovered bool
	// Duration is the longest gap between two successful requests from LastOKBefore to
	// FirstOKAfter: what a client waited at worst.
	Duration time.Duration
	// Failed counts failed requests started at or after the fault.
	Failed int
	// NewOwner answered FirstOKAfter.
	NewOwner string
	// Moves counts changes of answering node among successful requests after the fault.
	Moves int
	// DualAnswers counts answers from the old node after the new one first answered: two
	// nodes answering the VIP after a move.
	DualAnswers int
	// FirstFailures holds up to maxFailures failed requests after the fault, so that a
	// failure explains itself (when it started, how it failed).
	FirstFailures []Sample
}

const maxFailures = 5

// Failures describes FirstFailures, one "+offset error" per failed request, offsets from
// the fault.
func (o Outage) Failures(fault time.Time) string {
	parts := make([]string, 0, len(o.FirstFailures))
	for _, s := range o.FirstFailures {
		parts = append(parts, fmt.Sprintf("+%v (%v) %s", s.Start.Sub(fault).Round(time.Millisecond), s.End.Sub(s.Start).Round(time.Millisecond), s.Err))
	}
	return strings.Join(parts, "; ")
}

// AnalyzeFault measures the outage a fault at time fault on node from caused. It is a pure
// function of the samples (in order of start).
func AnalyzeFault(samples []Sample, fault time.Time, from string) Outage {
	var o Outage
	lastIdx := -1
	for i, s := range samples {
		if s.OK && s.Start.Before(fault) {
			lastIdx = i
		}
	}
	if lastIdx >= 0 {
		o.LastOKBefore = samples[lastIdx].Start
	}
	prevOK := o.LastOKBefore
	prevNode := ""
	if lastIdx >= 0 {
		prevNode = samples[lastIdx].Node
	}
	for _, s := range samples {
		if s.Start.Before(fault) {
			continue
		}
		if !s.OK {
			o.Failed++
			if len(o.FirstFailures) < maxFailures {
				o.FirstFailures = append(o.FirstFailures, s)
			}
			continue
		}
		if !o.Recovered {
			if !prevOK.IsZero() && s.Start.Sub(prevOK) > o.Duration {
				o.Duration = s.Start.Sub(prevOK)
			}
			prevOK = s.Start
			if s.Node != from {
				o.Recovered, o.FirstOKAfter, o.NewOwner = true, s.Start, s.Node
			}
		} else if s.Node == from {
			o.DualAnswers++
		}
		if prevNode != "" && s.Node != prevNode {
			o.Moves++
		}
		prevNode = s.Node
	}
	return o
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of values.
func Percentile(values []time.Duration, p float64) time.Duration {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// StreamLine summarizes the requests started in one window of a recording.
type StreamLine struct {
	Start   time.Time
	Answers map[string]int // node -> successful answers
	Errors  map[string]int // short error -> count
}

// format renders the line as "+1.20s  node-a x10" or "+1.30s  timeout x10".
func (s StreamLine) format(t0 time.Time) string {
	var parts []string
	for _, k := range sortedKeys(s.Answers) {
		parts = append(parts, fmt.Sprintf("%s x%d", k, s.Answers[k]))
	}
	for _, k := range sortedKeys(s.Errors) {
		parts = append(parts, fmt.Sprintf("%s x%d", k, s.Errors[k]))
	}
	return fmt.Sprintf("+%5.2fs  %s", s.Start.Sub(t0).Seconds(), strings.Join(parts, ", "))
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Stream groups samples into windows of width w, for people to read.
func Stream(samples []Sample, w time.Duration) []string {
	if len(samples) == 0 {
		return nil
	}
	t0 := samples[0].Start
	var lines []string
	var cur *StreamLine
	for _, s := range samples {
		start := t0.Add(s.Start.Sub(t0) / w * w)
		if cur == nil || !cur.Start.Equal(start) {
			if cur != nil {
				lines = append(lines, cur.format(t0))
			}
			cur = &StreamLine{Start: start, Answers: map[string]int{}, Errors: map[string]int{}}
		}
		if s.OK {
			cur.Answers[s.Node]++
		} else {
			cur.Errors[s.Err]++
		}
	}
	return append(lines, cur.format(t0))
}
