package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"vigil.dev/vigil/test/lab"
)

// A real Prometheus (Debian's) scrapes the controller and the agents as the chart's
// ServiceMonitors say, over HTTPS with a token bound to the chart's metrics-reader role,
// and evaluates the chart's alert rules. After a crash it shows the owner moved, a
// failover duration of the size the client saw, and every node's probe results.
func TestPrometheusScrapesVigilThroughAFailover(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 3)
	if err := e.l.InstallMonitoringCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	inst := e.installVigil("--set", "metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true")
	e.startVigil()
	prom, err := e.l.StartPrometheus(ctx, inst, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	v4 := lab.VIPv4(30)
	e.apply(webVIP("web", v4))
	first := e.owner(v4, 5*time.Second)

	up := e.waitQuery(prom, `sum(up{job=~"vigil-(controller|agent)-metrics"})`, func(s []lab.PromSample) bool { return len(s) == 1 && s[0].Value == 4 }, 20*time.Second)
	t.Logf("Prometheus scrapes %v targets", up[0].Value)
	e.waitQuery(prom, `vigil_virtualip_owner{virtualip="web",node="`+first+`"}`, nonEmpty, 10*time.Second)

	fault := time.Now()
	if err := e.l.CrashNode(first); err != nil {
		t.Fatal(err)
	}
	second := e.owner(v4, 5*time.Second)
	seen := time.Since(fault)
	t.Logf("crash of %s: %s answers after %v", first, second, seen.Round(time.Millisecond))

	owner := e.waitQuery(prom, `vigil_virtualip_owner{virtualip="web"}`, func(s []lab.PromSample) bool {
		return len(s) == 1 && s[0].Labels["node"] == second
	}, 10*time.Second)
	t.Logf("vigil_virtualip_owner: %v", owner[0].Labels)
	hist := e.waitQuery(prom, `vigil_virtualip_failover_duration_seconds_sum{reason="OwnerLost"} / vigil_virtualip_failover_duration_seconds_count{reason="OwnerLost"}`, nonEmpty, 10*time.Second)
	failover := time.Duration(hist[0].Value * float64(time.Second))
	t.Logf("vigil_virtualip_failover_duration_seconds (OwnerLost): %v; the client saw the new owner after %v", failover.Round(time.Millisecond), seen.Round(time.Millisecond))
	// Detection to reported bind is part of what the client waited for, and most of it
	// after memberlist's detection: more than nothing, less than the client's wait.
	if failover <= 0 || failover > seen {
		t.Errorf("failover duration %v, want within (0, %v]", failover, seen)
	}
	probes := e.waitQuery(prom, `vigil_probe_result{virtualip="web",check="web"}`, func(s []lab.PromSample) bool { return len(s) >= 2 }, 10*time.Second)
	for _, s := range probes {
		if s.Labels["node"] == "" {
			t.Errorf("agent series without a node label: %v", s.Labels)
		}
	}
	e.waitQuery(prom, `vigil_memberlist_members{state="alive",node="`+second+`"} == 3`, nonEmpty, 10*time.Second)
	e.waitQuery(prom, `vigil_build_info`, func(s []lab.PromSample) bool { return len(s) >= 3 }, 5*time.Second)

	rules, err := prom.Rules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) < 8 {
		t.Errorf("Prometheus loaded %d of the chart's alert rules: %v", len(rules), rules)
	}
	for name, health := range rules {
		if !strings.HasPrefix(health, "ok") {
			t.Errorf("rule %s: %s", name, health)
		}
	}

	// What each binary exposes passes promtool's metric lint.
	for _, target := range []struct {
		m *lab.Member
		w *lab.Workload
	}{{e.l.ControlPlane, &inst.Controller}, {mustNode(t, e.l, second), &inst.Agent}} {
		body, err := e.l.ScrapeMetrics(ctx, target.m, target.w, true, prom.Token)
		if err != nil {
			t.Fatal(err)
		}
		promtoolCheckMetrics(t, target.m.Name, body)
		t.Logf("%s: one sample of each vigil_ metric:\n%s", target.m.Name, firstVigilSamples(body))
	}
}

// firstVigilSamples is the first sample line of each vigil_ metric family of a scrape.
func firstVigilSamples(body string) string {
	var out []string
	seen := map[string]bool{}
	for line := range strings.Lines(body) {
		if !strings.HasPrefix(line, "vigil_") {
			continue
		}
		family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0], "_bucket"), "_sum"), "_count")
		if !seen[family] {
			seen[family] = true
			out = append(out, strings.TrimSpace(line))
		}
	}
	return strings.Join(out, "\n")
}
