package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"vigil.dev/vigil/test/lab"
)

// chaosDuration is how long TestChaos injects faults: 2 minutes, or
// $VIGIL_CHAOS_DURATION (a Go duration such as 5m).
func chaosDuration(t *testing.T) time.Duration {
	v := os.Getenv("VIGIL_CHAOS_DURATION")
	if v == "" {
		return 2 * time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > lab.MaxChaosDuration {
		t.Fatalf("VIGIL_CHAOS_DURATION=%q: want a duration up to %v", v, lab.MaxChaosDuration)
	}
	return d
}

// chaosSeed is $VIGIL_CHAOS_SEED, to replay a failed run's schedule, or one from the clock.
func chaosSeed(t *testing.T) uint64 {
	v := os.Getenv("VIGIL_CHAOS_SEED")
	if v == "" {
		return uint64(time.Now().UnixNano())
	}
	seed, err := strconv.ParseUint(v, 10, 64)
	if err != nil || seed == 0 {
		t.Fatalf("VIGIL_CHAOS_SEED=%q: want a positive integer", v)
	}
	return seed
}

// TestChaos is `make chaos` in short: random real faults for 2 minutes on 4 nodes and 6
// VIPs, the invariants checked all along (no VIP held twice or by nobody for long, every
// VirtualIP Ready on its holder after the last fault). Any violation fails it.
func TestChaos(t *testing.T) {
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
	for _, e := range report.FaultErrors {
		t.Errorf("a fault could not be injected or undone: %s", e)
	}
	if report.Violations.Count > 0 {
		t.Errorf("%d invariant violations (seed %d); see the summary above", report.Violations.Count, seed)
	}
}
