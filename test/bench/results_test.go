package bench

import (
	"slices"
	"testing"
)

// A run replaces the rows of its system, scenario and lab size, and keeps the others: a
// 50-node run does not erase the 3-node figures, and rows written before the lab size was
// recorded count as 3 nodes.
func TestMergeResultsKeysOnSystemScenarioAndLabSize(t *testing.T) {
	old := []FailoverResult{
		{System: "vigil", Scenario: ScenarioNodeCrash, P50ms: 450},            // 3 nodes, unrecorded
		{System: "vigil", Scenario: ScenarioNodeCrash, Nodes: 50, P50ms: 300}, // kept
		{System: "keepalived-tuned", Scenario: ScenarioNodeCrash, P50ms: 334}, // kept
		{System: "vigil", Scenario: ScenarioPlanned, Nodes: 3, P50ms: 10},     // kept
	}
	fresh := []FailoverResult{{System: "vigil", Scenario: ScenarioNodeCrash, Nodes: 3, P50ms: 190}}
	got := MergeResults(old, fresh)
	type row struct {
		scenario, system string
		nodes            int
		p50              float64
	}
	var rows []row
	for _, r := range got {
		rows = append(rows, row{r.Scenario, r.System, r.LabNodes(), r.P50ms})
	}
	want := []row{
		{ScenarioNodeCrash, "keepalived-tuned", 3, 334},
		{ScenarioNodeCrash, "vigil", 3, 190},
		{ScenarioNodeCrash, "vigil", 50, 300},
		{ScenarioPlanned, "vigil", 3, 10},
	}
	if !slices.Equal(rows, want) {
		t.Errorf("merged rows\n%v\nwant\n%v", rows, want)
	}
}
