package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// ChaosOptions configure RunChaos.
type ChaosOptions struct {
	// Vigil is the vigil binary (Lab.BuildVigil builds one from this tree).
	Vigil string
	// Duration is the fault phase; the run adds Vigil's start-up before it and the final
	// settle after it.
	Duration time.Duration
	// Seed draws the fault schedule: the same seed gives the same schedule.
	Seed uint64
	// Kinds limits the faults to these kinds (empty: every kind).
	Kinds []FaultKind
	// AgentArgs are added to the chart's agent args (e.g. --zap-log-level=debug).
	AgentArgs []string
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

const (
	// chaosRequestEvery is each VIP's recorder interval: 6 VIPs at 20 ms are 300 requests
	// a second, few enough for 2 cores, many enough to see a 100 ms gap.
	chaosRequestEvery = 20 * time.Millisecond
	// steadyTimeout bounds the wait for every VIP to be Ready on one holder before the
	// faults start.
	steadyTimeout = 60 * time.Second
)

// ChaosVIPs are the chaos run's VirtualIPs: 4 IPv4 and 2 IPv6 addresses, half of them
// with a TCP check of the node's HTTP service (a stopped service moves them), half with
// none (nothing but the node's or agent's death moves them).
func ChaosVIPs() []ChaosVIP {
	return []ChaosVIP{
		{Name: "web4-a", Address: VIPv4(0), Checked: true},
		{Name: "web4-b", Address: VIPv4(1), Checked: true},
		{Name: "plain4-c", Address: VIPv4(2)},
		{Name: "plain4-d", Address: VIPv4(3)},
		{Name: "web6-a", Address: VIPv6(0), Checked: true},
		{Name: "plain6-b", Address: VIPv6(1)},
	}
}

// RunChaos runs Vigil in the lab (controller, an agent on every node, ChaosVIPs), records
// every VIP from the client and every node's kernel the whole time, injects the seeded
// schedule's faults, undoes them, and checks the invariants (see CheckInvariants and
// FinalProblems). Violations are in the report; an error means the run itself could not
// be made (or was cancelled).
func RunChaos(ctx context.Context, l *Lab, o ChaosOptions) (ChaosReport, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	vips := ChaosVIPs()
	plan, err := Schedule(ScheduleOptions{Seed: o.Seed, Duration: o.Duration, Nodes: nodeNames(l), VIPs: vipNames(vips), Kinds: o.Kinds})
	if err != nil {
		return ChaosReport{}, err
	}
	c, err := l.KubeClient()
	if err != nil {
		return ChaosReport{}, err
	}
	agents, err := startChaosVigil(ctx, l, c, o, vips)
	if agents != nil {
		defer agents.Stop()
	}
	if err != nil {
		return ChaosReport{}, err
	}
	kernel, err := l.observeKernel(vipAddrs(vips))
	if err != nil {
		return ChaosReport{}, err
	}
	defer kernel.Stop()
	recorders, err := startChaosRecorders(l, vips, o.Duration)
	defer func() { _, _ = stopRecorders(recorders) }()
	if err != nil {
		return ChaosReport{}, err
	}
	if _, problems := waitSettled(ctx, l, c, kernel, vips, nil, time.Now().Add(steadyTimeout)); len(problems) > 0 {
		return ChaosReport{}, fmt.Errorf("the VIPs were not steady after %v, before any fault: %v", steadyTimeout, problems)
	}
	o.Logf("chaos: every VIP Ready on one holder; %d faults over %v (seed %d)", len(plan), o.Duration, o.Seed)
	fi := &faultInjector{l: l, c: c, agents: agents, vips: vips, logf: o.Logf, start: time.Now()}
	records := fi.run(ctx, plan)
	if err := ctx.Err(); err != nil {
		return ChaosReport{}, fmt.Errorf("chaos run cancelled (every fault undone): %w", err)
	}
	lastUndone := fi.start
	for _, r := range records {
		lastUndone = maxTime(lastUndone, r.Undone)
	}
	settled, problems := waitSettled(ctx, l, c, kernel, vips, records, lastUndone.Add(FinalSettle))
	obs := Observations{Start: fi.start, End: time.Now(), VIPs: vips, Faults: records, Kernel: kernel.Stop(), AgentExits: agents.Stop()}
	if obs.Client, err = stopRecorders(recorders); err != nil {
		return ChaosReport{}, err
	}
	meta := ChaosMeta{Seed: o.Seed, Duration: o.Duration, Nodes: len(l.Nodes), Machine: Machine(), FinalSettle: -1}
	if len(problems) == 0 {
		meta.FinalSettle = max(settled.Sub(lastUndone), 0)
	}
	return BuildChaosReport(meta, obs, CheckInvariants(obs), finalViolations(problems, lastUndone)), nil
}

// startChaosVigil starts the controller (the lab restarts it) and the agents (kept
// running), waits until they are ready and creates the VirtualIPs.
func startChaosVigil(ctx context.Context, l *Lab, c client.Client, o ChaosOptions, vips []ChaosVIP) (*agentKeeper, error) {
	if _, err := l.StartController(o.Vigil); err != nil {
		return nil, err
	}
	agents, err := l.keepAgents(o.Vigil, o.AgentArgs, o.Logf)
	if err != nil {
		return nil, err
	}
	if err := l.WaitForVigil(60 * time.Second); err != nil {
		return agents, err
	}
	for _, v := range vips {
		if err := c.Create(ctx, virtualIPFor(v)); err != nil {
			return agents, fmt.Errorf("creating VirtualIP %s: %w", v.Name, err)
		}
	}
	return agents, nil
}

// startChaosRecorders starts one recorder per VIP, for the fault phase and then some.
func startChaosRecorders(l *Lab, vips []ChaosVIP, phase time.Duration) (map[string]*Recorder, error) {
	recorders := map[string]*Recorder{}
	for _, v := range vips {
		r, err := l.StartRecorder(RecordOptions{
			URL:   vipURL(v.Address),
			Every: chaosRequestEvery, Timeout: time.Second, Duration: min(phase+10*time.Minute, MaxRecording),
		})
		if err != nil {
			return recorders, err
		}
		recorders[v.Name] = r
	}
	return recorders, nil
}

// stopRecorders stops the recorders (once: a stopped recorder is forgotten) and returns
// their samples per VIP.
func stopRecorders(recorders map[string]*Recorder) (map[string][]Sample, error) {
	out := map[string][]Sample{}
	var errs []error
	for name, r := range recorders {
		s, err := r.Stop()
		if err != nil {
			errs = append(errs, fmt.Errorf("recorder of %s: %w", name, err))
		}
		out[name] = s
		delete(recorders, name)
	}
	return out, errors.Join(errs...)
}

// waitSettled polls until every VirtualIP is Ready on the one node holding its address,
// which answers the client (FinalProblems), or the deadline passes; it returns when they
// were, or what was not so.
func waitSettled(ctx context.Context, l *Lab, c client.Client, kernel *kernelObserver, vips []ChaosVIP, faults []FaultRecord, deadline time.Time) (time.Time, map[string]string) {
	for {
		problems := FinalProblems(finalStates(ctx, l, c, kernel.latest(), vips, faults))
		if len(problems) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return time.Now(), problems
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// finalStates reads every VirtualIP's status, who holds its address in the kernel sample,
// and who answers a fresh request of the client to it.
func finalStates(ctx context.Context, l *Lab, c client.Client, s KernelSample, vips []ChaosVIP, faults []FaultRecord) []FinalVIPState {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var list vigilv1.VirtualIPList
	listErr := c.List(rctx, &list)
	out := make([]FinalVIPState, len(vips))
	var wg sync.WaitGroup
	for i, v := range vips {
		st := &out[i]
		st.Name = v.Name
		if listErr != nil {
			st.Err = listErr.Error()
		}
		st.Holders, _ = holdersOf(s, v.Address, faults)
		for _, item := range list.Items {
			if item.Name == v.Name && listErr == nil {
				st.Exists, st.Owner = true, item.Status.Owner
				st.Ready = meta.IsStatusConditionTrue(item.Status.Conditions, vigilv1.ConditionReady)
			}
		}
		wg.Go(func() {
			var err error
			if st.Answer, err = l.Get(ctx, vipURL(v.Address), time.Second); err != nil {
				st.Answer, st.AnswerErr = "", shortError(err)
			}
		})
	}
	wg.Wait()
	return out
}

// vipURL is where the client asks a VIP's HTTP service.
func vipURL(a netip.Addr) string {
	return "http://" + net.JoinHostPort(a.String(), strconv.Itoa(HTTPPort)) + "/"
}

// finalViolations turns what had not settled FinalSettle after the last fault into
// violations of invariant 3.
func finalViolations(problems map[string]string, lastUndone time.Time) []Violation {
	var out []Violation
	for _, v := range ChaosVIPs() {
		if p, ok := problems[v.Name]; ok {
			out = append(out, Violation{At: lastUndone.Add(FinalSettle), VIP: v.Name, Kind: ViolationFinalState,
				Duration: FinalSettle, Bound: FinalSettle, Detail: p})
		}
	}
	return out
}

func nodeNames(l *Lab) []string {
	names := make([]string, len(l.Nodes))
	for i, n := range l.Nodes {
		names[i] = n.Name
	}
	return names
}

func vipNames(vips []ChaosVIP) []string {
	names := make([]string, len(vips))
	for i, v := range vips {
		names[i] = v.Name
	}
	return names
}
