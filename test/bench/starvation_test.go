package bench

import (
	"reflect"
	"testing"
	"time"

	"vigil.dev/vigil/test/lab"
)

func TestCountStarvation(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ok := func(ms int, node string) lab.Sample {
		return lab.Sample{Start: at(ms), End: at(ms + 2), OK: true, Node: node}
	}
	fail := func(ms int, err string) lab.Sample { return lab.Sample{Start: at(ms), End: at(ms + 1000), Err: err} }
	// every returns good answers from node every 10 ms in [from, to).
	every := func(from, to int, node string) []lab.Sample {
		var s []lab.Sample
		for ms := from; ms < to; ms += 10 {
			s = append(s, ok(ms, node))
		}
		return s
	}
	cat := func(parts ...[]lab.Sample) []lab.Sample {
		var s []lab.Sample
		for _, p := range parts {
			s = append(s, p...)
		}
		return s
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name    string
		samples []lab.Sample
		want    StarvationCount
	}{
		{
			name:    "one node answers all along: nothing false, no time without holder",
			samples: every(-50, 1000, "node-a"),
			want: StarvationCount{Requests: 100, Errors: map[string]int{}, LongestGap: ms(10),
				OwnerBefore: "node-a", OwnerAfter: "node-a"},
		},
		{
			name:    "the recorder itself stalls 300 ms without a failed request: a gap, no outage",
			samples: cat(every(-50, 400, "node-a"), every(700, 1000, "node-a")),
			want: StarvationCount{Requests: 70, Errors: map[string]int{}, LongestGap: ms(310),
				OwnerBefore: "node-a", OwnerAfter: "node-a"},
		},
		{
			name: "failed requests between two answers of the same node: an outage from the last answer to the next, no move",
			samples: cat(every(-50, 300, "node-a"), []lab.Sample{fail(300, "timeout"), fail(310, "timeout"), fail(320, "refused")},
				every(500, 1000, "node-a")),
			want: StarvationCount{Requests: 83, Failed: 3, Errors: map[string]int{"timeout": 2, "refused": 1},
				Outages: []time.Duration{ms(210)}, WithoutHolder: ms(210), LongestGap: ms(210),
				OwnerBefore: "node-a", OwnerAfter: "node-a"},
		},
		{
			name: "the holder moves away and back through two outages: two false failovers, the outages summed",
			samples: cat(every(-50, 200, "node-a"), []lab.Sample{fail(200, "timeout")}, every(400, 600, "node-b"),
				[]lab.Sample{fail(600, "refused")}, every(700, 1000, "node-a")),
			want: StarvationCount{Requests: 72, Failed: 2, OwnerChanges: 2, Errors: map[string]int{"timeout": 1, "refused": 1},
				Changes: []OwnerChange{{At: at(400), From: "node-a", To: "node-b"}, {At: at(700), From: "node-b", To: "node-a"}},
				Outages: []time.Duration{ms(210), ms(110)}, WithoutHolder: ms(320), LongestGap: ms(210),
				OwnerBefore: "node-a", OwnerAfter: "node-a"},
		},
		{
			name:    "a move without any failed request is still a false failover",
			samples: cat(every(-50, 500, "node-a"), every(500, 1000, "node-b")),
			want: StarvationCount{Requests: 100, OwnerChanges: 1, Errors: map[string]int{},
				Changes:    []OwnerChange{{At: at(500), From: "node-a", To: "node-b"}},
				LongestGap: ms(10), OwnerBefore: "node-a", OwnerAfter: "node-b"},
		},
		{
			name:    "an outage still open at the window's end counts until the end",
			samples: cat(every(-50, 800, "node-a"), []lab.Sample{fail(800, "timeout"), fail(900, "timeout")}),
			want: StarvationCount{Requests: 82, Failed: 2, Errors: map[string]int{"timeout": 2},
				Outages: []time.Duration{ms(210)}, WithoutHolder: ms(210), LongestGap: ms(210),
				OwnerBefore: "node-a", OwnerAfter: "node-a"},
		},
		{
			name:    "requests before and after the window do not count",
			samples: cat([]lab.Sample{fail(-100, "timeout")}, every(-50, 1000, "node-a"), []lab.Sample{fail(1000, "timeout"), ok(1100, "node-b")}),
			want: StarvationCount{Requests: 100, Errors: map[string]int{}, LongestGap: ms(10),
				OwnerBefore: "node-a", OwnerAfter: "node-a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CountStarvation(tt.samples, t0, at(1000))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("CountStarvation:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
