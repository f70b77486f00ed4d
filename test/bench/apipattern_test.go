package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBinRequests(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	reqs := []Request{
		{At: at(-50), Agent: "node-a", What: "get nodeagents"}, // before the window
		{At: at(10), Agent: "node-a", What: "get nodeagents", Code: 503},
		{At: at(20), Agent: "node-b", What: "get nodeagents"},
		{At: at(90), Agent: "node-c", What: nodeAgentWrite},
		{At: at(95), Agent: "node-a", What: nodeAgentWrite},
		{At: at(150), Agent: "node-b", What: nodeAgentWrite},
		{At: at(950), Agent: "node-a", What: "get nodeagents"},
		{At: at(1000), Agent: "node-a", What: "get nodeagents"}, // the window's end: out
	}
	p := BinRequests(reqs, t0, at(1000), t0, 100*time.Millisecond)
	if len(p.Counts) != 10 || p.Total() != 6 {
		t.Fatalf("buckets %d, total %d; want 10, 6", len(p.Counts), p.Total())
	}
	if p.Peak() != 0 || p.Counts[0] != 4 || p.Agents[0] != 3 {
		t.Errorf("peak bucket %d with %d requests from %d agents; want 0, 4, 3", p.Peak(), p.Counts[0], p.Agents[0])
	}
	if p.PeakWhat["get nodeagents"] != 2 || p.PeakWhat[nodeAgentWrite] != 2 {
		t.Errorf("peak by request %v", p.PeakWhat)
	}
	if p.Failed["get nodeagents"] != 1 {
		t.Errorf("failed %v, want one get", p.Failed)
	}
	a := p.PerAgent["node-a"]
	if a.Count != 3 || a.First != 10*time.Millisecond || a.Last != 950*time.Millisecond || !a.HasWrite || a.FirstWrite != 95*time.Millisecond {
		t.Errorf("node-a: %+v", a)
	}
	if c := p.PerAgent["node-c"]; c.First != 90*time.Millisecond || c.FirstWrite != 90*time.Millisecond {
		t.Errorf("node-c: %+v", c)
	}

	var out bytes.Buffer
	WritePattern(&out, "test", p, true)
	for _, want := range []string{
		"6 requests from 3 agents in 1.0 s",
		"peak 100ms bucket: 4 requests from 3 agents at +0.0 s",
		"get nodeagents 3 (1 failed)",
		"buckets by requests in them: 0×7 1×2 4×1",
		"    +0.0 |   4   1   0   0   0   0   0   0   0   1 |   6",
		"spread of the agents' first requests: +0.01 s to +0.09 s = 0.08 s; of their first NodeAgent writes: +0.09 s to +0.15 s = 0.06 s",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
