package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/test/lab"
)

// The scale benchmark: many VirtualIPs created at once over a lab of real agents, one
// vigil agent process per lab node, the controller in the control plane. It measures how
// soon every VIP is owned, Ready and answering the client, what Vigil writes to the API
// server once settled, what its processes cost, and how a crash of a node owning many VIPs
// fails them over.

// ScaleVIPv4Range holds the IPv4 VIPs of the scale benchmark beyond the lab's /24: they
// name eth0 (spec.interface) and the client gets an on-link route to them.
var ScaleVIPv4Range = netip.MustParsePrefix("198.18.16.0/20")

// ScaleVIP is the i-th VIP of the scale benchmark: even i IPv4 (198.18.16.1 on, 200 a
// /24, on eth0), odd i IPv6 (fd00:198:18::2:0 on, in the lab's on-link /64). Half and
// half: the kernel's neighbour tables (ARP, ND) are shared by every namespace of the
// machine and hold 1024 entries each by default (gc_thresh3), so a client resolving a
// thousand new addresses at once in one family would overflow its table.
func ScaleVIP(i int) (addr netip.Addr, iface string) {
	j := i / 2
	if i%2 == 0 {
		b := ScaleVIPv4Range.Addr().As4()
		b[2] += byte(j / 200)
		b[3] = byte(1 + j%200)
		return netip.AddrFrom4(b), lab.NodeInterface
	}
	b := netip.MustParseAddr("fd00:198:18::2:0").As16()
	b[14], b[15] = byte(j>>8), byte(j)
	return netip.AddrFrom16(b), ""
}

// ScaleOptions configure a scale run.
type ScaleOptions struct {
	// Bin is the vigil binary; built from this tree when empty.
	Bin  string
	VIPs int
	// Checks gives every VirtualIP a TCP check of the node's HTTP service (one probe a
	// second per node, shared by every VIP: same target).
	Checks bool
	// Workers create the VirtualIPs in parallel.
	Workers int
	// Timeout bounds the wait for every VIP to be Ready and to answer.
	Timeout time.Duration
	// Settle is the time after every VIP answers before the steady window; Steady the
	// window in which writes, CPU and memory are measured.
	Settle, Steady time.Duration
	// Crashes is how many times a node owning CrashVIPs VIPs (or the nearest count) is
	// crashed; CrashEvery the client's interval per VIP meanwhile.
	Crashes    int
	CrashVIPs  int
	CrashEvery time.Duration
	// PinNeighbours makes every lab member's IPv4 neighbour entry for every other member
	// permanent in each member's namespace (see pinNeighbours).
	PinNeighbours bool
	// SingleVIPCrashP99ms is the failover benchmark's node-crash p99 for Vigil (one VIP), the
	// baseline of the crash goal (0: unknown).
	SingleVIPCrashP99ms float64
	Logf                func(format string, args ...any)
}

func (o *ScaleOptions) defaults() {
	if o.Workers == 0 {
		o.Workers = 16
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.CrashEvery == 0 {
		o.CrashEvery = 10 * time.Millisecond
	}
	if o.CrashVIPs == 0 {
		o.CrashVIPs = 20
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// ScaleRun is one scale run's figures (times in seconds from the first create call).
type ScaleRun struct {
	// Date is the run's day (UTC) and Machine where it ran: a report keeps runs of other
	// sizes from earlier.
	Date    string `json:"date,omitempty"`
	Machine string `json:"machine,omitempty"`
	VIPs    int    `json:"vips"`
	Nodes   int    `json:"nodes"`
	Agents  string `json:"agents"`
	Checks  bool   `json:"health_checks"`
	// PinnedNeighbours: the members' IPv4 neighbour entries were permanent (pinNeighbours).
	PinnedNeighbours bool `json:"pinned_neighbours"`
	// LoadBefore is the machine's load average (1 min) before the run: the machine is shared.
	LoadBefore float64 `json:"load_before"`
	// AgentsReadyS is how long the agents took to start and join (before any VIP).
	AgentsReadyS float64 `json:"agents_ready_s"`
	// IdleAgentCPUPct is the mean agent's CPU with no VIP, in % of a core.
	IdleAgentCPUPct float64 `json:"idle_agent_cpu_pct"`
	IdleAgentRSSMiB float64 `json:"idle_agent_rss_mib"`

	CreateS           float64        `json:"create_s"`
	TimeToAllOwnedS   float64        `json:"time_to_all_owned_s"`
	TimeToAllReadyS   float64        `json:"time_to_all_ready_s"`
	TimeToAllAnswerS  float64        `json:"time_to_all_answering_s"`
	ReadyP50S         float64        `json:"ready_p50_s"`
	AnswerP50S        float64        `json:"answering_p50_s"`
	NotReady          int            `json:"not_ready,omitempty"`
	NotAnswering      int            `json:"not_answering,omitempty"`
	VIPsPerAgentMin   int            `json:"vips_per_agent_min"`
	VIPsPerAgentMax   int            `json:"vips_per_agent_max"`
	BurstControllerS  float64        `json:"burst_controller_cpu_s"`
	BurstAgentMeanS   float64        `json:"burst_agent_cpu_s_mean"`
	BurstAPIServerS   float64        `json:"burst_apiserver_cpu_s"`
	BurstWrites       int            `json:"burst_writes"`
	BurstWritesByWhat map[string]int `json:"burst_writes_by_what,omitempty"`

	SteadyWindowS           float64            `json:"steady_window_s"`
	SteadyWritesPerMin      float64            `json:"steady_writes_per_min"`
	SteadyHeartbeatsPerMin  float64            `json:"steady_heartbeats_per_min"`
	SteadyBeyondHeartbeats  float64            `json:"steady_writes_beyond_heartbeats_per_min"`
	SteadyWritesByWhat      map[string]float64 `json:"steady_writes_by_what_per_min"`
	SteadyRequestsPerS      float64            `json:"steady_requests_per_s"`
	ControllerRSSMiB        float64            `json:"controller_rss_mib"`
	ControllerPeakRSSMiB    float64            `json:"controller_peak_rss_mib"`
	ControllerCPUPct        float64            `json:"controller_cpu_pct"`
	AgentRSSMiB             float64            `json:"agent_rss_mib"`
	AgentRSSMeanMiB         float64            `json:"agent_rss_mean_mib"`
	AgentPeakRSSMiB         float64            `json:"agent_peak_rss_mib"`
	AgentCPUPct             float64            `json:"agent_cpu_pct"`
	AgentCPUMaxPct          float64            `json:"agent_cpu_max_pct"`
	APIServerCPUPct         float64            `json:"apiserver_cpu_pct"`
	APIServerRSSMiB         float64            `json:"apiserver_rss_mib"`
	EtcdCPUPct              float64            `json:"etcd_cpu_pct"`
	NeighbourTableOverflows uint64             `json:"neighbour_table_overflows"`
	ControllerRestarts      int                `json:"controller_restarts,omitempty"`

	// Crash: a node owning CrashVIPs VIPs (about) crashed, Crashes times.
	CrashTrials  int     `json:"crash_trials,omitempty"`
	CrashEveryMS float64 `json:"crash_request_every_ms,omitempty"`
	CrashVIPs    []int   `json:"crash_vips,omitempty"`
	CrashP50ms   float64 `json:"crash_p50_ms,omitempty"`
	CrashP99ms   float64 `json:"crash_p99_ms,omitempty"`
	// Crash20P99ms is CrashP99ms under the name the issue gave it (the crashed nodes own
	// about 20 VIPs each, CrashVIPs says how many); null without crashes.
	Crash20P99ms      *float64       `json:"crash_20_p99_ms"`
	CrashMaxms        float64        `json:"crash_max_ms,omitempty"`
	CrashFailed       int            `json:"crash_failed_requests,omitempty"`
	CrashAPIPerS      float64        `json:"crash_api_requests_per_s,omitempty"`
	CrashAPIPeakPerS  int            `json:"crash_api_peak_per_s,omitempty"`
	CrashAPIWrites    int            `json:"crash_api_writes,omitempty"`
	CrashAPIByWhat    map[string]int `json:"crash_api_by_what,omitempty"`
	SingleVIPCrashP99 float64        `json:"single_vip_crash_p99_ms,omitempty"`
}

// scaleVIP is one VirtualIP of a run.
type scaleVIP struct {
	name, url string
	vip       *vigilv1.VirtualIP
}

func scaleVIPs(n int, checks bool) []scaleVIP {
	out := make([]scaleVIP, n)
	for i := range out {
		addr, iface := ScaleVIP(i)
		v := &vigilv1.VirtualIP{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("scale-%04d", i)},
			Spec:       vigilv1.VirtualIPSpec{Address: addr.String(), Interface: iface},
		}
		if checks {
			v.Spec.HealthChecks = []vigilv1.HealthCheck{{Name: "web", TCP: &vigilv1.TCPCheck{Host: "127.0.0.1", Port: lab.HTTPPort}}}
		}
		out[i] = scaleVIP{name: v.Name, url: fmt.Sprintf("http://%s/", netip.AddrPortFrom(addr, lab.HTTPPort)), vip: v}
	}
	return out
}

// RunScale runs the controller and an agent on every node of l (brought up with
// lab.Config.AuditLog), creates o.VIPs VirtualIPs at once and measures.
func RunScale(ctx context.Context, l *lab.Lab, o ScaleOptions) (ScaleRun, error) {
	o.defaults()
	r := ScaleRun{Date: time.Now().UTC().Format(time.DateOnly), Machine: lab.Machine(), VIPs: o.VIPs, Nodes: len(l.Nodes), Checks: o.Checks, SingleVIPCrashP99: o.SingleVIPCrashP99ms,
		Agents: fmt.Sprintf("real: one vigil agent process in each of the %d lab nodes", len(l.Nodes))}
	r.LoadBefore = loadAvg1()
	overflowsBefore := neighbourOverflows()
	if o.Bin == "" {
		bin, err := l.BuildVigil()
		if err != nil {
			return r, err
		}
		o.Bin = bin
	}
	if _, err := l.Exec("client", "ip", "route", "add", ScaleVIPv4Range.String(), "dev", lab.NodeInterface); err != nil {
		return r, fmt.Errorf("routing the scale VIPs from the client: %w", err)
	}
	if o.PinNeighbours {
		if err := l.PinNeighbours(); err != nil {
			return r, err
		}
		r.PinnedNeighbours = true
	}
	if err := startScaleVigil(ctx, l, o, &r); err != nil {
		return r, err
	}
	vips := scaleVIPs(o.VIPs, o.Checks)
	w, err := watchVIPs(ctx, l)
	if err != nil {
		return r, err
	}
	defer w.Stop()
	if err := scaleBurst(ctx, l, o, vips, w, &r); err != nil {
		return r, err
	}
	if err := scaleSteady(ctx, l, o, &r); err != nil {
		return r, err
	}
	if o.Crashes > 0 {
		if err := scaleCrashes(ctx, l, o, vips, w, &r); err != nil {
			return r, err
		}
	}
	r.NeighbourTableOverflows = neighbourOverflows() - overflowsBefore
	return r, nil
}

// startScaleVigil starts the controller and the agents, waits until they are ready and
// measures the idle agents.
func startScaleVigil(ctx context.Context, l *lab.Lab, o ScaleOptions, r *ScaleRun) error {
	if _, err := l.StartController(o.Bin); err != nil {
		return err
	}
	start := time.Now()
	for _, n := range l.Nodes {
		if _, err := l.StartAgent(o.Bin, n.Name); err != nil {
			return err
		}
	}
	if err := l.WaitForVigil(5 * time.Minute); err != nil {
		return errors.Join(err, exitedAgents(l))
	}
	r.AgentsReadyS = round1(time.Since(start).Seconds())
	o.Logf("%d agents ready and joined after %.1f s; measuring them idle for 10 s", len(l.Nodes), r.AgentsReadyS)
	before := readAgents(l)
	if err := sleepCtx(ctx, 10*time.Second); err != nil {
		return err
	}
	after := readAgents(l)
	cpu, _, rss, _, _ := agentFigures(before, after)
	r.IdleAgentCPUPct, r.IdleAgentRSSMiB = cpu, rss
	o.Logf("idle agents: %.1f %% of a core each (mean), %.1f MiB RSS (mean)", cpu, rss)
	return nil
}

// scaleBurst creates every VirtualIP at once and waits until each is Ready and answers.
func scaleBurst(ctx context.Context, l *lab.Lab, o ScaleOptions, vips []scaleVIP, w *vipWatch, r *ScaleRun) error {
	urls := make([]string, len(vips))
	names := make([]string, len(vips))
	for i, v := range vips {
		urls[i], names[i] = v.url, v.name
	}
	// Every target waits for its address at once: the request in flight when the owner
	// announces the address is answered at once, so the client sees each VIP as soon as
	// it can be seen.
	sweep, err := l.StartSweep(lab.SweepOptions{URLs: urls, UntilOK: true, Every: 100 * time.Millisecond,
		Timeout: 2 * time.Second, Parallel: len(urls), Duration: o.Timeout + time.Minute})
	if err != nil {
		return err
	}
	defer func() { _, _ = sweep.Stop() }()
	c, err := l.KubeClient()
	if err != nil {
		return err
	}
	before := readVigil(l)
	t0 := time.Now()
	if err := createAll(ctx, c, vips, o.Workers); err != nil {
		return err
	}
	r.CreateS = round1(time.Since(t0).Seconds())
	o.Logf("%d VirtualIPs created in %.1f s", len(vips), r.CreateS)
	answered, err := awaitBurst(ctx, o, sweep, w, names, t0, r)
	if err != nil {
		return err
	}
	burstFigures(l, w, names, t0, answered, before, r)
	o.Logf("all owned after %.1f s, all Ready after %.1f s (p50 %.1f s), all answering after %.1f s (p50 %.1f s); %d to %d VIPs per agent",
		r.TimeToAllOwnedS, r.TimeToAllReadyS, r.ReadyP50S, r.TimeToAllAnswerS, r.AnswerP50S, r.VIPsPerAgentMin, r.VIPsPerAgentMax)
	o.Logf("during the burst: controller %.1f s of CPU, kube-apiserver %.1f s, each agent %.1f s (mean); %d writes: %v",
		r.BurstControllerS, r.BurstAPIServerS, r.BurstAgentMeanS, r.BurstWrites, r.BurstWritesByWhat)
	return nil
}

// awaitBurst polls the sweep and the watch until every VIP is Ready and answers (or
// o.Timeout passes, counted in r) and returns when each first answered.
func awaitBurst(ctx context.Context, o ScaleOptions, sweep *lab.Sweep, w *vipWatch, names []string, t0 time.Time, r *ScaleRun) ([]time.Time, error) {
	deadline := t0.Add(o.Timeout)
	var answered []time.Time
	lastLog := time.Now()
	for {
		samples, err := sweep.Samples()
		if err != nil {
			return answered, err
		}
		answered = lab.FirstAnswers(samples, len(names))
		owned, ready := w.times(names)
		nOwned, nReady, nAnswered := countSet(owned), countSet(ready), countSet(answered)
		if nReady == len(names) && nAnswered == len(names) {
			break
		}
		if time.Since(lastLog) >= 5*time.Second {
			o.Logf("+%.0f s: %d owned, %d Ready, %d answering of %d", time.Since(t0).Seconds(), nOwned, nReady, nAnswered, len(names))
			lastLog = time.Now()
		}
		if err := w.Err(); err != nil {
			return answered, fmt.Errorf("watching VirtualIPs: %w", err)
		}
		if time.Now().After(deadline) {
			r.NotReady, r.NotAnswering = len(names)-nReady, len(names)-nAnswered
			o.Logf("not all Ready and answering after %v: %d not Ready, %d not answering", o.Timeout, r.NotReady, r.NotAnswering)
			break
		}
		if err := sleepCtx(ctx, sweepPoll); err != nil {
			return answered, err
		}
	}
	return answered, nil
}

// burstFigures fills r with the burst's times, CPU, spread and API writes.
func burstFigures(l *lab.Lab, w *vipWatch, names []string, t0 time.Time, answered []time.Time, before vigilUsage, r *ScaleRun) {
	after := readVigil(l)
	owned, ready := w.times(names)
	r.TimeToAllOwnedS, _ = spanFrom(t0, owned)
	r.TimeToAllReadyS, r.ReadyP50S = spanFrom(t0, ready)
	r.TimeToAllAnswerS, r.AnswerP50S = spanFrom(t0, answered)
	r.BurstControllerS = round1((after.controller.CPU - before.controller.CPU).Seconds())
	r.BurstAPIServerS = round1((after.apiserver.CPU - before.apiserver.CPU).Seconds())
	var sum time.Duration
	for n, a := range after.agents {
		sum += a.CPU - before.agents[n].CPU
	}
	if len(after.agents) > 0 {
		r.BurstAgentMeanS = round1(sum.Seconds() / float64(len(after.agents)))
	}
	owners, _ := w.owners()
	r.VIPsPerAgentMin, r.VIPsPerAgentMax = perAgent(owners, l)
	if events, _, err := l.ReadAuditLog(); err == nil {
		counts := CountAPI(events, t0, time.Now())
		r.BurstWrites = counts.Writes
		r.BurstWritesByWhat = map[string]int{}
		for what, n := range counts.ByWhat {
			if IsWrite(strings.Fields(what)[0]) {
				r.BurstWritesByWhat[what] = n
			}
		}
	}
}

// createAll creates the VirtualIPs with workers in parallel.
func createAll(ctx context.Context, c client.Client, vips []scaleVIP, workers int) error {
	next := make(chan *vigilv1.VirtualIP)
	errs := make(chan error, len(vips))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for v := range next {
				if err := c.Create(ctx, v.DeepCopy()); err != nil {
					errs <- fmt.Errorf("creating VirtualIP %s: %w", v.Name, err)
				}
			}
		})
	}
	for _, v := range vips {
		next <- v.vip
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

// scaleSteady lets Vigil settle, then measures its writes, CPU and memory over a window.
func scaleSteady(ctx context.Context, l *lab.Lab, o ScaleOptions, r *ScaleRun) error {
	o.Logf("settling for %v, then measuring %v of steady state", o.Settle, o.Steady)
	if err := sleepCtx(ctx, o.Settle); err != nil {
		return err
	}
	from, before := time.Now(), readVigil(l)
	if err := sleepCtx(ctx, o.Steady); err != nil {
		return err
	}
	to, after := time.Now(), readVigil(l)
	time.Sleep(time.Second) // the window's last requests reach the log
	events, _, err := l.ReadAuditLog()
	if err != nil {
		return err
	}
	counts := CountAPI(events, from, to)
	r.SteadyWindowS = round1(to.Sub(from).Seconds())
	r.SteadyWritesPerMin = counts.PerMinute(counts.Writes)
	r.SteadyWritesByWhat = counts.WritesPerMinute()
	r.SteadyRequestsPerS = counts.PerSecond(counts.Total)
	// Heartbeats: each agent's NodeAgent every 10 s (the chart's default), the leader's
	// Lease every 2 s. Any NodeAgent write beyond one per agent per 10 s is a report.
	heartbeats := min(counts.ByWhat[nodeAgentWrite], int(float64(len(l.Nodes))*to.Sub(from).Seconds()/10+0.5))
	leases := counts.ByWhat["update leases"] + counts.ByWhat["patch leases"]
	r.SteadyHeartbeatsPerMin = counts.PerMinute(heartbeats + leases)
	r.SteadyBeyondHeartbeats = counts.PerMinute(counts.Writes - heartbeats - leases)
	r.ControllerRSSMiB, r.ControllerPeakRSSMiB = MiB(after.controller.RSS), MiB(after.controller.HWM)
	r.ControllerCPUPct = CPUPercent(before.controller, after.controller)
	if before.controllerPID != after.controllerPID {
		r.ControllerRestarts++
	}
	r.AgentCPUPct, r.AgentCPUMaxPct, r.AgentRSSMeanMiB, r.AgentRSSMiB, r.AgentPeakRSSMiB = agentFigures(before.agents, after.agents)
	r.APIServerCPUPct, r.APIServerRSSMiB = CPUPercent(before.apiserver, after.apiserver), MiB(after.apiserver.RSS)
	r.EtcdCPUPct = CPUPercent(before.etcd, after.etcd)
	o.Logf("steady: %.1f writes/min (%.1f heartbeats and lease renewals, %.1f beyond): %v", r.SteadyWritesPerMin,
		r.SteadyHeartbeatsPerMin, r.SteadyBeyondHeartbeats, r.SteadyWritesByWhat)
	o.Logf("steady: controller %.1f %% CPU, %.1f MiB RSS (peak %.1f); agents %.1f %% CPU (max %.1f), %.1f MiB RSS (max %.1f, peak %.1f); kube-apiserver %.1f %%, etcd %.1f %%",
		r.ControllerCPUPct, r.ControllerRSSMiB, r.ControllerPeakRSSMiB, r.AgentCPUPct, r.AgentCPUMaxPct, r.AgentRSSMeanMiB, r.AgentRSSMiB,
		r.AgentPeakRSSMiB, r.APIServerCPUPct, r.EtcdCPUPct)
	return nil
}

// vigilUsage is a reading of the lab's Vigil processes and control plane.
type vigilUsage struct {
	controller, apiserver, etcd ProcUsage
	controllerPID               int
	agents                      map[string]ProcUsage
}

func readVigil(l *lab.Lab) vigilUsage {
	u := vigilUsage{agents: readAgents(l)}
	if p, ok := l.Process("cp/vigil-controller"); ok {
		u.controllerPID = p.PID()
		u.controller, _ = ReadProc(p.PID())
	}
	if p, err := l.APIServer(); err == nil {
		u.apiserver, _ = ReadProc(p.PID())
	}
	if p, ok := l.Process("cp/etcd"); ok {
		u.etcd, _ = ReadProc(p.PID())
	}
	return u
}

// readAgents reads every running agent's process.
func readAgents(l *lab.Lab) map[string]ProcUsage {
	out := map[string]ProcUsage{}
	for _, n := range l.Nodes {
		if p, ok := l.Process(n.Name + "/vigil-agent"); ok && p.Running() {
			if u, err := ReadProc(p.PID()); err == nil {
				out[n.Name] = u
			}
		}
	}
	return out
}

// agentFigures are the agents' mean and highest CPU between two readings, and their mean,
// highest and peak RSS at the second.
func agentFigures(before, after map[string]ProcUsage) (cpuMean, cpuMax, rssMean, rssMax, hwmMax float64) {
	n := 0
	for node, a := range after {
		b, ok := before[node]
		if !ok {
			continue
		}
		n++
		cpu := CPUPercent(b, a)
		cpuMean += cpu
		cpuMax = max(cpuMax, cpu)
		rssMean += MiB(a.RSS)
		rssMax = max(rssMax, MiB(a.RSS))
		hwmMax = max(hwmMax, MiB(a.HWM))
	}
	if n > 0 {
		cpuMean, rssMean = round1(cpuMean/float64(n)), round1(rssMean/float64(n))
	}
	return cpuMean, cpuMax, rssMean, rssMax, hwmMax
}

// perAgent is the fewest and most VIPs a node owns.
func perAgent(owners map[string]string, l *lab.Lab) (lo, hi int) {
	count := map[string]int{}
	for _, n := range l.Nodes {
		count[n.Name] = 0
	}
	for _, o := range owners {
		if o != "" {
			count[o]++
		}
	}
	lo = -1
	for _, c := range count {
		if lo < 0 || c < lo {
			lo = c
		}
		hi = max(hi, c)
	}
	return max(lo, 0), hi
}

func countSet(ts []time.Time) int {
	n := 0
	for _, t := range ts {
		if !t.IsZero() {
			n++
		}
	}
	return n
}

// spanFrom is, in seconds from t0, when the last of ts happened and the median; 0 when
// one never happened (the run says how many).
func spanFrom(t0 time.Time, ts []time.Time) (all, p50 float64) {
	ds := make([]time.Duration, 0, len(ts))
	for _, t := range ts {
		if t.IsZero() {
			return 0, 0
		}
		ds = append(ds, t.Sub(t0))
	}
	return round2(lab.Percentile(ds, 100).Seconds()), round2(lab.Percentile(ds, 50).Seconds())
}

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

// loadAvg1 is the machine's 1-minute load average (0 if unknown).
func loadAvg1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// neighbourOverflows is how often the machine's ARP and ND tables were full (their
// table_fulls counters, shared by every namespace).
func neighbourOverflows() uint64 {
	var total uint64
	for _, path := range []string{"/proc/net/stat/arp_cache", "/proc/net/stat/ndisc_cache"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		total += TableFulls(string(b))
	}
	return total
}

// TableFulls sums the table_fulls column of a /proc/net/stat/*_cache file (a header line,
// then one line of hexadecimal counters per CPU). Pure.
func TableFulls(stat string) uint64 {
	lines := strings.Split(strings.TrimSpace(stat), "\n")
	if len(lines) < 2 {
		return 0
	}
	col := slices.Index(strings.Fields(lines[0]), "table_fulls")
	if col < 0 {
		return 0
	}
	var total uint64
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if col < len(f) {
			if n, err := strconv.ParseUint(f[col], 16, 64); err == nil {
				total += n
			}
		}
	}
	return total
}
