package e2e

import (
	"path/filepath"
	"testing"

	"vigil.dev/vigil/test/lab"
)

// TestChaos is `make chaos` in short: random real faults for 2 minutes on 4 nodes and 6
// VIPs, the invariants checked all along (no VIP held twice or by nobody for long, every
// VirtualIP Ready on its holder after the last fault). Any violation fails it.
func TestChaos(t *testing.T) {
	// Registered before the lab so that it runs after the lab's cleanup, which prints the
	// tail of every process log when the test failed: a CI log that keeps only the end of
	// the output still shows the seed and what was violated.
	var verdict string
	t.Cleanup(func() {
		if t.Failed() && verdict != "" {
			t.Logf("chaos verdict again:\n%s", verdict)
		}
	})
	e := newEnv(t, 4)
	d, seed := chaosDuration(t), chaosSeed(t)
	t.Logf("chaos: faults for %v, seed %d (replay with VIGIL_CHAOS_SEED=%d)", d, seed, seed)
	report, err := lab.RunChaos(t.Context(), e.l, lab.ChaosOptions{
		Vigil: e.vigil, Duration: d, Seed: seed, AgentArgs: []string{"--zap-log-level=debug"}, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "chaos.json")
	if err := lab.WriteChaosReport(path, report); err != nil {
		t.Fatal(err)
	}
	t.Logf("report (%s):\n%s", path, report.Summary())
	verdict = report.Verdict()
	for _, e := range report.FaultErrors {
		t.Errorf("a fault could not be injected or undone: %s", e)
	}
	if report.Violations.Count > 0 {
		t.Errorf("%d invariant violations (seed %d); see the summary above", report.Violations.Count, seed)
	}
}
