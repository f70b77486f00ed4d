package lab

import (
	"testing"
	"time"
)

func TestOneHolder(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int, holders ...string) HolderSample {
		return HolderSample{At: t0.Add(time.Duration(ms) * time.Millisecond), Holders: holders}
	}
	unreadable := at(300, "node-b")
	unreadable.Errs = []string{"node-c: gone"}
	for _, tc := range []struct {
		name     string
		samples  []HolderSample
		from     time.Time
		wantAt   int
		wantNode string
		wantOK   bool
	}{
		{name: "two holders, then one for good",
			samples: []HolderSample{at(0, "node-a", "node-b"), at(200, "node-b"), at(400, "node-b"), at(600, "node-b")},
			wantAt:  200, wantNode: "node-b", wantOK: true},
		{name: "one holder, then two again: the run restarts",
			samples: []HolderSample{at(0, "node-b"), at(200, "node-a", "node-b"), at(400, "node-b"), at(800, "node-b")},
			wantAt:  400, wantNode: "node-b", wantOK: true},
		{name: "the holder changes: the run restarts",
			samples: []HolderSample{at(0, "node-a"), at(200, "node-b"), at(400, "node-b"), at(600, "node-b")},
			wantAt:  200, wantNode: "node-b", wantOK: true},
		{name: "nobody breaks a run",
			samples: []HolderSample{at(0, "node-b"), at(200), at(400, "node-b"), at(800, "node-b")},
			wantAt:  400, wantNode: "node-b", wantOK: true},
		{name: "an unreadable sample breaks a run",
			samples: []HolderSample{at(0, "node-b"), unreadable, at(400, "node-b"), at(800, "node-b")},
			wantAt:  400, wantNode: "node-b", wantOK: true},
		{name: "samples before from do not count",
			samples: []HolderSample{at(0, "node-a"), at(200, "node-a"), at(400, "node-a"), at(600, "node-a")},
			from:    t0.Add(300 * time.Millisecond), wantAt: 400, wantNode: "node-a", wantOK: true},
		{name: "no run lasts long enough",
			samples: []HolderSample{at(0, "node-b"), at(200, "node-a", "node-b"), at(400, "node-b"), at(500, "node-b")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := tc.from
			if from.IsZero() {
				from = t0
			}
			gotAt, node, ok := OneHolder(tc.samples, from, 200*time.Millisecond)
			if ok != tc.wantOK || node != tc.wantNode || (ok && !gotAt.Equal(t0.Add(time.Duration(tc.wantAt)*time.Millisecond))) {
				t.Errorf("OneHolder = %v, %q, %v; want +%dms, %q, %v", gotAt.Sub(t0), node, ok, tc.wantAt, tc.wantNode, tc.wantOK)
			}
		})
	}
}
