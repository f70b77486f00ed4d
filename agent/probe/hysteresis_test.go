package probe

import (
	"errors"
	"strings"
	"testing"
)

func TestHysteresisIsKeepalivedsFallAndRise(t *testing.T) {
	fail := errors.New("connection refused")
	cases := []struct {
		name       string
		fall, rise int
		results    string // '+' success, '-' failure
		want       string // state after each result: U, P, F
	}{
		{"unknown passes on the rise-th success", 3, 2, "++", "UP"},
		{"unknown fails at once", 3, 2, "-", "F"},
		{"passing fails on exactly the fall-th miss", 3, 1, "+---", "PPPF"},
		{"a success resets the miss count", 3, 1, "+--+--", "PPPPPP"},
		{"failing recovers on exactly the rise-th success", 1, 3, "+-+++", "UFFFP"},
		{"a miss resets the success count", 1, 2, "+-+-++", "UFFFFP"},
		{"fall 1 rise 1 follows every result", 1, 1, "+-+-", "PFPF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := Hysteresis{Fall: tc.fall, Rise: tc.rise}
			var got strings.Builder
			for _, r := range tc.results {
				var err error
				if r == '-' {
					err = fail
				}
				h.Observe("tcp 127.0.0.1:80", err)
				got.WriteByte(h.State.String()[0])
			}
			if got.String() != tc.want {
				t.Errorf("states %s, want %s", got.String(), tc.want)
			}
		})
	}
}

func TestTransitionReasonsAreReadable(t *testing.T) {
	h := Hysteresis{Fall: 3, Rise: 2, State: Passing}
	var reason string
	for range 3 {
		_, reason = h.Observe("tcp 127.0.0.1:80", errors.New("connection refused"))
	}
	if reason != "tcp 127.0.0.1:80: connection refused (3 in a row)" {
		t.Errorf("fail reason %q", reason)
	}
	for range 2 {
		_, reason = h.Observe("tcp 127.0.0.1:80", nil)
	}
	if reason != "tcp 127.0.0.1:80: succeeded (2 in a row)" {
		t.Errorf("recovery reason %q", reason)
	}
}
