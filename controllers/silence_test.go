package controllers

import (
	"maps"
	"strings"
	"testing"
	"time"
)

// Histories are written as one string per node: "a" answered once, then one character per
// 20 ms interval: "s" a request sent (and not answered), "." nothing sent (this controller
// did not run). "-" means the node never answered. The last character is now.
func TestSilentNodes(t *testing.T) {
	const interval, deadAfter = 20 * time.Millisecond, 100 * time.Millisecond
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	parse := func(s string) EchoHistory {
		if s == "-" {
			return EchoHistory{Unanswered: []time.Time{now.Add(-interval), now}}
		}
		var h EchoHistory
		at := now.Add(-time.Duration(len(s)-1) * interval)
		for i, c := range s {
			t := at.Add(time.Duration(i) * interval)
			switch c {
			case 'a':
				h.Answered, h.Unanswered = t, nil
			case 's':
				h.Unanswered = append(h.Unanswered, t)
			}
		}
		return h
	}
	since := func(intervalsAgo int) time.Time { return now.Add(-time.Duration(intervalsAgo) * interval) }
	cases := []struct {
		name  string
		nodes map[string]string
		want  map[string]time.Time
	}{
		{"everyone answers", map[string]string{"a": "sssa", "b": "sa"}, map[string]time.Time{}},
		{"a crashed: 6 requests unanswered, the first 100 ms ago: silent since that one",
			map[string]string{"a": "assssss", "b": "sssssa"}, map[string]time.Time{"a": since(5)}},
		{"4 requests unanswered, the first 60 ms ago: not yet silent",
			map[string]string{"a": "assss", "b": "a"}, map[string]time.Time{}},
		{"a node that never answered is not silent (echo filtered)",
			map[string]string{"a": "-", "b": "a"}, map[string]time.Time{}},
		{"this controller did not run for 4 intervals: the count starts after the gap",
			map[string]string{"a": "ass....sss", "b": "a"}, map[string]time.Time{}},
		{"this controller has not run for 3 intervals now: no verdict",
			map[string]string{"a": "assssss...", "b": "a"}, map[string]time.Time{}},
		{"one missed tick is on schedule (gap of 2 intervals)",
			map[string]string{"a": "ass.sss", "b": "a"}, map[string]time.Time{"a": since(5)}},
		{"everyone silent: this controller is cut off, nobody is silent",
			map[string]string{"a": "assssss", "b": "assssss"}, map[string]time.Time{}},
		{"two of three silent (a rack): both are",
			map[string]string{"a": "assssss", "b": "assssss", "c": "a"}, map[string]time.Time{"a": since(5), "b": since(5)}},
		{"silent while the only other node never answered: cut off or filtered, no verdict",
			map[string]string{"a": "assssss", "b": "-"}, map[string]time.Time{}},
	}
	for _, tc := range cases {
		nodes := map[string]EchoHistory{}
		for n, s := range tc.nodes {
			nodes[n] = parse(s)
		}
		got := SilentNodes(nodes, now, interval, deadAfter)
		if !maps.EqualFunc(got, tc.want, time.Time.Equal) {
			t.Errorf("%s:\n%s\n got %v\nwant %v", tc.name, describe(tc.nodes), got, tc.want)
		}
	}
}

func describe(nodes map[string]string) string {
	var b strings.Builder
	for n, s := range nodes {
		b.WriteString("  " + n + ": " + s + "\n")
	}
	return b.String()
}

func TestKeepSilentSince(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 11, 29, 10, 0, s, 0, time.UTC) }
	cases := []struct {
		name        string
		before, now map[string]time.Time
		want        map[string]time.Time
	}{
		{"a long silence keeps its start, though the history dates it later",
			map[string]time.Time{"a": at(1)}, map[string]time.Time{"a": at(6)}, map[string]time.Time{"a": at(1)}},
		{"a node that falls silent is dated by the history",
			map[string]time.Time{}, map[string]time.Time{"a": at(6)}, map[string]time.Time{"a": at(6)}},
		{"a node that answered in between starts a new silence",
			map[string]time.Time{"b": at(1)}, map[string]time.Time{"a": at(6)}, map[string]time.Time{"a": at(6)}},
		{"a node answering again is not silent", map[string]time.Time{"a": at(1)}, map[string]time.Time{}, map[string]time.Time{}},
	}
	for _, tc := range cases {
		if got := KeepSilentSince(tc.before, tc.now); !maps.EqualFunc(got, tc.want, time.Time.Equal) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
