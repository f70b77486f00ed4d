package bench

import (
	"reflect"
	"testing"
	"time"
)

func TestTraceStagesFromTheLogs(t *testing.T) {
	fault := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return fault.Add(time.Duration(ms) * time.Millisecond) }
	lines := []logLine{
		{TS: at(120), Msg: "memberlist: Suspect node-a has failed, no acks received", process: "node-b"},
		{TS: at(110), Msg: "memberlist: Suspect node-a has failed, no acks received", process: "node-c"},
		{TS: at(115), Msg: "memberlist: Suspect node-b has failed, no acks received", process: "node-c"}, // another node
		{TS: at(150), Msg: "node stopped answering echo requests: its agent counts as dead", Node: "node-a", process: "controller"},
		{TS: at(158), Msg: "owner changed", Name: "bench", From: "node-a", To: "node-b", process: "controller"},
		{TS: at(158), Msg: "owner changed", Name: "other", From: "node-a", To: "node-c", process: "controller"}, // another VIP
		{TS: at(161), Msg: "bound VIP", VIP: "bench", process: "node-b"},
		{TS: at(410), Msg: "memberlist: Marking node-a as failed, suspect timeout reached (1 peer confirmations)", process: "controller"},
		{TS: at(411), Msg: "memberlist member died or left", Member: "node-a", process: "controller"}, // later than the node watch
	}
	got := traceStages(lines, StageTrial{Fault: fault, Owner: "node-a", NewOwner: "node-b", Answered: at(166), VIP: "bench"})
	want := Stages{StageSuspected: 110 * time.Millisecond, StageNotified: 150 * time.Millisecond, StageDecided: 158 * time.Millisecond,
		StageBound: 161 * time.Millisecond, StageDeclared: 410 * time.Millisecond, StageAnswered: 166 * time.Millisecond}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stages:\n got %v\nwant %v", got, want)
	}
	if s, want := FormatStages(MedianStages([]Stages{got})), "suspected +110 ms, notified +150 ms (+40), decided +158 ms (+8), bound +161 ms (+3), answered +166 ms (+5), declared +410 ms (+244)"; s != want {
		t.Errorf("FormatStages:\n got %s\nwant %s", s, want)
	}
}
