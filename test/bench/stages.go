package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"vigil.dev/vigil/test/lab"
)

// A failover's stages, in the order they happen, as the processes' own logs date them.
const (
	StageSuspected   = "suspected"    // memberlist: the first member suspects the owner
	StageDeclared    = "declared"     // memberlist: the first member marks it failed
	StageNotified    = "notified"     // the controller learns of the death (memberlist, or the node watch)
	StageCheckFailed = "check-failed" // the owner's agent: its health check fails (fall reached)
	StageReported    = "reported"     // the API server has answered the owner's report of it (audit log)
	StageDecided     = "decided"      // the controller writes the new owner
	StageBound       = "bound"        // the new owner binds the address
	StageAnswered    = "answered"     // the client's first answer from the new owner
)

// StageNames lists the stages in order.
var StageNames = []string{StageSuspected, StageDeclared, StageNotified, StageCheckFailed, StageReported, StageDecided, StageBound, StageAnswered}

// Stages are the offsets of each stage from the fault; a stage that left no trace is
// missing.
type Stages map[string]time.Duration

// StageTracer is a system that can date the stages of a failover from its logs.
type StageTracer interface {
	Stages(l *lab.Lab, t StageTrial) (Stages, error)
}

// StageTrial is what a trial knows when it asks for the stages.
type StageTrial struct {
	Fault    time.Time
	Owner    string // the node that failed
	NewOwner string // the node that answered after
	Answered time.Time
	VIP      string // the VirtualIP's name
}

// logLine is the part of a vigil JSON log line the stages need.
type logLine struct {
	TS      time.Time `json:"ts"`
	Logger  string    `json:"logger"`
	Msg     string    `json:"msg"`
	Member  string    `json:"member"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	VIP     string    `json:"vip"`
	Node    string    `json:"node"`
	Name    string    `json:"name"`
	State   string    `json:"state"`
	process string
}

// readLogLines reads the JSON lines of a process's log written at or after since; other
// lines (not JSON, earlier) are skipped.
func readLogLines(path, process string, since time.Time) ([]logLine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []logLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.TS.Before(since) {
			continue
		}
		l.process = process
		out = append(out, l)
	}
	return out, sc.Err()
}

// traceStages dates the stages of one failover (a crash, or a failed check) from the log
// lines of the controller (process "controller") and the agents (process: the node's
// name). It is a pure function of its input.
func traceStages(lines []logLine, t StageTrial) Stages {
	s := Stages{}
	first := func(stage string, at time.Time) {
		d := at.Sub(t.Fault)
		if old, ok := s[stage]; !ok || d < old {
			s[stage] = d
		}
	}
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l.Msg, "memberlist: Suspect "+t.Owner+" "):
			first(StageSuspected, l.TS)
		case strings.HasPrefix(l.Msg, "memberlist: Marking "+t.Owner+" as failed"):
			first(StageDeclared, l.TS)
		case l.process == "controller" && l.Msg == "memberlist member died or left" && l.Member == t.Owner,
			l.process == "controller" && strings.HasPrefix(l.Msg, "node stopped answering") && l.Node == t.Owner:
			first(StageNotified, l.TS)
		case l.process == t.Owner && l.Msg == "health check changed" && l.VIP == t.VIP && l.State == "Failing":
			first(StageCheckFailed, l.TS)
		case l.process == "controller" && l.Msg == "owner changed" && l.Name == t.VIP && l.From == t.Owner:
			first(StageDecided, l.TS)
		case l.process == t.NewOwner && l.Msg == "bound VIP" && l.VIP == t.VIP:
			first(StageBound, l.TS)
		}
	}
	if !t.Answered.IsZero() {
		s[StageAnswered] = t.Answered.Sub(t.Fault)
	}
	return s
}

// MedianStages is the median offset of each stage over trials (trials where the stage
// left no trace do not count), in milliseconds.
func MedianStages(trials []Stages) map[string]float64 {
	out := map[string]float64{}
	for _, name := range StageNames {
		var ds []time.Duration
		for _, t := range trials {
			if d, ok := t[name]; ok {
				ds = append(ds, d)
			}
		}
		if len(ds) > 0 {
			out[name] = math.Round(float64(lab.Percentile(ds, 50))/float64(time.Millisecond)*10) / 10
		}
	}
	return out
}

// FormatStages renders median stage offsets in the order they happened, as
// "notified +148 ms, decided +155 ms (+7), ...": each with the time since the one before.
// Stages off the path of the failover (memberlist's own suspicion, when the node watch
// was faster) show where they fell.
func FormatStages(m map[string]float64) string {
	names := slices.Clone(StageNames)
	names = slices.DeleteFunc(names, func(n string) bool { _, ok := m[n]; return !ok })
	slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(m[a], m[b]) })
	var parts []string
	for i, name := range names {
		step := ""
		if i > 0 {
			step = fmt.Sprintf(" (%+.0f)", m[name]-m[names[i-1]])
		}
		parts = append(parts, fmt.Sprintf("%s +%.0f ms%s", name, m[name], step))
	}
	return strings.Join(parts, ", ")
}

// reportedStage is when kube-apiserver answered the first NodeAgent status write of the
// owner's agent at or after the owner's check failed (StageCheckFailed): when the report
// of the failure reached the API server, as its audit log dates it. Pure.
func reportedStage(events []lab.AuditEvent, owner string, after time.Time) (time.Time, bool) {
	for _, e := range events {
		pod := e.User.Extra["authentication.kubernetes.io/pod-name"]
		if e.Resource() != "nodeagents/status" || len(pod) != 1 || pod[0] != "vigil-agent-"+owner ||
			e.RequestReceived.Before(after) {
			continue
		}
		return e.StageTimestamp, true
	}
	return time.Time{}, false
}
