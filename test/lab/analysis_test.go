package lab

import (
	"testing"
	"time"
)

// samples builds a recording: one request every 10ms from t0, answered as the pattern
// says ("a", "b" = node; "-" = failed).
func samples(t0 time.Time, pattern ...string) []Sample {
	var out []Sample
	for i, p := range pattern {
		s := Sample{Start: t0.Add(time.Duration(i) * 10 * time.Millisecond)}
		s.End = s.Start.Add(time.Millisecond)
		if p == "-" {
			s.Err = "timeout"
		} else {
			s.OK, s.Node = true, p
		}
		out = append(out, s)
	}
	return out
}

func TestAnalyzeFault(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 10 * time.Millisecond) }
	cases := []struct {
		name        string
		pattern     []string
		faultAt     int
		from        string
		recovered   bool
		outage      time.Duration
		failed      int
		newOwner    string
		moves, dual int
	}{
		{"crash: gap until the standby answers", []string{"a", "a", "-", "-", "-", "b", "b"}, 2, "a", true, 40 * time.Millisecond, 3, "b", 1, 0},
		{"planned: no gap, no failure", []string{"a", "a", "a", "b", "b"}, 2, "a", true, 10 * time.Millisecond, 0, "b", 1, 0},
		{"dual answering after the move", []string{"a", "-", "b", "a", "b", "a"}, 1, "a", true, 20 * time.Millisecond, 1, "b", 4, 2},
		{"never recovered", []string{"a", "-", "-"}, 1, "a", false, 0, 2, "", 0, 0},
		{"same node back (no owner given)", []string{"a", "-", "-", "a"}, 1, "", true, 30 * time.Millisecond, 2, "a", 0, 0},
		{"flap after the move counts moves", []string{"a", "-", "b", "c", "b"}, 1, "a", true, 20 * time.Millisecond, 1, "b", 3, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := AnalyzeFault(samples(t0, tc.pattern...), at(tc.faultAt), tc.from)
			if o.Recovered != tc.recovered || o.Duration != tc.outage || o.Failed != tc.failed ||
				o.NewOwner != tc.newOwner || o.Moves != tc.moves || o.DualAnswers != tc.dual {
				t.Errorf("got recovered=%v outage=%v failed=%d new=%q moves=%d dual=%d\nwant recovered=%v outage=%v failed=%d new=%q moves=%d dual=%d",
					o.Recovered, o.Duration, o.Failed, o.NewOwner, o.Moves, o.DualAnswers,
					tc.recovered, tc.outage, tc.failed, tc.newOwner, tc.moves, tc.dual)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	values := ms(50, 10, 40, 20, 30, 60, 70, 80, 90, 100)
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {95, 100 * time.Millisecond}, {99, 100 * time.Millisecond}, {10, 10 * time.Millisecond}} {
		if got := Percentile(values, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}
