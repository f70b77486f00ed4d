package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/test/lab"
)

// The API request pattern: how Vigil's agents call the API server in steady state and
// right after an API outage, from kube-apiserver's audit log (lab.Config.AuditLog). Run
// with two builds of vigil, it shows whether N agents hit a recovering API server in
// lockstep.

// API outage faults of APIPattern.
const (
	// FaultStop freezes kube-apiserver (SIGSTOP, then SIGCONT): connections stay open,
	// requests hang, and those sent meanwhile are read when it goes on.
	FaultStop = "stop"
	// FaultKill kills kube-apiserver (SIGKILL) and starts it again: requests are refused
	// meanwhile, and every client connects anew.
	FaultKill = "kill"
)

// APIPatternOptions configure APIPattern.
type APIPatternOptions struct {
	// Bin is the vigil binary (controller and agents); built from this tree when empty.
	Bin  string
	VIPs int
	// Fault is FaultStop or FaultKill.
	Fault  string
	Outage time.Duration
	// Stagger spreads the agents' starts over this long, at random, as a DaemonSet's pods
	// start on their nodes at different times: agents started in the same instant keep
	// their heartbeats in phase for good (an unjittered ticker).
	Stagger time.Duration
	// Settle is how long Vigil runs with its VIPs held before the steady window begins.
	Settle time.Duration
	// Steady is the window measured before the outage, After the one after the return
	// (after kube-apiserver answers /readyz again).
	Steady, After time.Duration
	// Bucket is the histogram's bucket.
	Bucket time.Duration
	// AuditCopy, when set, is where the audit log is copied (the lab's run directory goes
	// with the lab).
	AuditCopy string
	Logf      func(format string, args ...any)
}

// APIPattern runs the controller and an agent on every node of l (brought up with
// lab.Config.AuditLog) with o.VIPs VirtualIPs, lets them settle, takes kube-apiserver away
// for o.Outage, brings it back, and writes to w the agents' requests per bucket in the
// steady window before the outage and in the window after the return.
func APIPattern(ctx context.Context, l *lab.Lab, o APIPatternOptions, w io.Writer) error {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	agentUser, dropped, err := startForPattern(ctx, l, &o)
	if err != nil {
		return err
	}
	o.Logf("VIPs held; settling for %v, then %v of steady state", o.Settle, o.Steady)
	if err := sleepCtx(ctx, o.Settle); err != nil {
		return err
	}
	steadyFrom := time.Now()
	if err := sleepCtx(ctx, o.Steady); err != nil {
		return err
	}
	loadBefore := loadAverage()
	down, back, ready, err := apiOutage(ctx, l, o)
	if err != nil {
		return err
	}
	o.Logf("kube-apiserver back (%s), /readyz after %v; recording %v", o.Fault, ready.Sub(back).Round(time.Millisecond), o.After)
	// A second more: the last requests of the window are in the log.
	if err := sleepCtx(ctx, time.Until(ready.Add(o.After+time.Second))); err != nil {
		return err
	}
	events, skipped, err := l.ReadAuditLog()
	if err != nil {
		return err
	}
	if o.AuditCopy != "" {
		if err := copyFile(l.AuditLogPath(), o.AuditCopy); err != nil {
			return err
		}
	}
	reqs, others := agentRequests(l, events, agentUser)
	_, _ = fmt.Fprintf(w, "\nmachine: %d CPUs, load average (1 min) %s at the outage, %s at the end: the lab shares them\n",
		runtime.NumCPU(), loadBefore, loadAverage())
	_, _ = fmt.Fprintf(w, "%d agents (one a node, started over %v), %d VirtualIPs, vigil %s\noutage: %s, away for %v\n",
		len(l.Nodes), o.Stagger, o.VIPs, o.Bin, faultName(o.Fault), down)
	if len(dropped) > 0 {
		_, _ = fmt.Fprintf(w, "chart flags this vigil does not know, left out: %s\n", strings.Join(dropped, " "))
	}
	_, _ = fmt.Fprintf(w, "requests of %s from the audit log (%d requests of other users of Vigil's namespace; %d unreadable lines)\n",
		agentUser, others, skipped)
	steady := BinRequests(reqs, steadyFrom, steadyFrom.Add(o.Steady), steadyFrom.Add(o.Steady), o.Bucket)
	WritePattern(w, fmt.Sprintf("steady state: the %v before the outage (times from the outage's start)", o.Steady), steady, false)
	after := BinRequests(reqs, back, ready.Add(o.After), back, o.Bucket)
	title := fmt.Sprintf("after the return: kube-apiserver %s at +0.0 s, /readyz answered by +%.1f s; until %v after that",
		returnVerb(o.Fault), ready.Sub(back).Seconds(), o.After)
	WritePattern(w, title, after, true)
	if after.Abandoned > 0 {
		fresh := slices.DeleteFunc(slices.Clone(reqs), func(r Request) bool { return r.Abandoned })
		WritePattern(w, title+", without the abandoned requests", BinRequests(fresh, back, ready.Add(o.After), back, o.Bucket), true)
	}
	return nil
}

// startForPattern installs Vigil, runs the controller and the agents, creates the
// VirtualIPs and waits until each is held by one node. It returns the agents' user name
// and the chart's flags left out because o.Bin does not know them.
func startForPattern(ctx context.Context, l *lab.Lab, o *APIPatternOptions) (agentUser string, dropped []string, err error) {
	if o.Bin == "" {
		bin, err := l.BuildVigil()
		if err != nil {
			return "", nil, err
		}
		o.Bin = bin
	}
	inst, err := l.Installation(ctx)
	if err != nil {
		return "", nil, err
	}
	// The chart may pass flags a binary of another revision does not know.
	for _, wl := range []*lab.Workload{&inst.Controller, &inst.Agent} {
		var unknown []string
		if wl.Args, unknown, err = knownArgs(o.Bin, wl.Args); err != nil {
			return "", nil, err
		}
		if len(unknown) > 0 {
			o.Logf("%s does not know the chart's %s: left out", o.Bin, strings.Join(unknown, " "))
			dropped = append(dropped, unknown...)
		}
	}
	if _, err := l.StartController(o.Bin); err != nil {
		return "", nil, err
	}
	if err := startAgents(ctx, l, o.Bin, o.Stagger); err != nil {
		return "", nil, err
	}
	if err := l.WaitForVigil(2 * time.Minute); err != nil {
		return "", nil, errors.Join(err, exitedAgents(l))
	}
	c, err := l.KubeClient()
	if err != nil {
		return "", nil, err
	}
	for i := range o.VIPs {
		vip := &vigilv1.VirtualIP{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pattern-%d", i)},
			Spec: vigilv1.VirtualIPSpec{Address: lab.VIPv4(i).String(), HealthChecks: []vigilv1.HealthCheck{
				{Name: "web", TCP: &vigilv1.TCPCheck{Host: "127.0.0.1", Port: lab.HTTPPort}},
			}},
		}
		if err := c.Create(ctx, vip); err != nil {
			return "", nil, fmt.Errorf("creating VirtualIP %s: %w", vip.Name, err)
		}
	}
	if err := waitHeld(ctx, l, o.VIPs, time.Minute); err != nil {
		return "", nil, errors.Join(err, exitedAgents(l))
	}
	return "system:serviceaccount:" + inst.Namespace + ":" + inst.Agent.ServiceAccount, dropped, nil
}

// knownArgs keeps the flags of args (a subcommand and its flags, "--name=value") that
// bin's subcommand knows, as its -h lists them, and returns the others.
func knownArgs(bin string, args []string) (kept, dropped []string, err error) {
	if len(args) == 0 {
		return args, nil, nil
	}
	out, err := exec.Command(bin, args[0], "-h").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Usage") && !strings.Contains(string(out), "  -") {
		return nil, nil, fmt.Errorf("%s %s -h: %w\n%s", bin, args[0], err, out)
	}
	known := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f, ok := strings.CutPrefix(line, "  -"); ok {
			known[strings.Fields(f + " ")[0]] = true
		}
	}
	kept = []string{args[0]}
	for _, a := range args[1:] {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && !known[name] {
			dropped = append(dropped, a)
			continue
		}
		kept = append(kept, a)
	}
	return kept, dropped, nil
}

// startAgents starts an agent on every node, at random times spread over stagger.
func startAgents(ctx context.Context, l *lab.Lab, bin string, stagger time.Duration) error {
	at := make([]time.Duration, len(l.Nodes))
	for i := range at {
		if stagger > 0 {
			at[i] = rand.N(stagger)
		}
	}
	slices.Sort(at)
	start := time.Now()
	for i, n := range l.Nodes {
		if err := sleepCtx(ctx, time.Until(start.Add(at[i]))); err != nil {
			return err
		}
		if _, err := l.StartAgent(bin, n.Name); err != nil {
			return err
		}
	}
	return nil
}

// exitedAgents says which agents exited, with their logs' last lines (a binary that
// refuses the chart's flags, say), and what the controller logged last.
func exitedAgents(l *lab.Lab) error {
	var errs []error
	if p, ok := l.Process("cp/vigil-controller"); ok {
		errs = append(errs, fmt.Errorf("the controller's last lines:\n%s", p.LogTail(3)))
	}
	for _, n := range l.Nodes {
		if p, ok := l.Process(n.Name + "/vigil-agent"); ok && !p.Running() {
			errs = append(errs, fmt.Errorf("the agent on %s exited: %w\n%s", n.Name, p.Err(), p.LogTail(10)))
		}
	}
	return errors.Join(errs...)
}

// waitHeld waits until each of the first n lab VIPs is held by exactly one node.
func waitHeld(ctx context.Context, l *lab.Lab, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i := 0; i < n; {
		holders, err := l.Holders(lab.VIPv4(i))
		if err == nil && len(holders) == 1 {
			i++
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("VIP %s not held by one node after %v: holders %v, %w", lab.VIPv4(i), timeout, holders, err)
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// apiOutage takes kube-apiserver away for o.Outage and brings it back: down is how long
// it was away, back when it was continued or started again, ready when it answered
// /readyz after that.
func apiOutage(ctx context.Context, l *lab.Lab, o APIPatternOptions) (down time.Duration, back, ready time.Time, err error) {
	api, err := l.APIServer()
	if err != nil {
		return 0, back, ready, err
	}
	o.Logf("kube-apiserver away (%s) for %v", o.Fault, o.Outage)
	start := time.Now()
	switch o.Fault {
	case FaultStop:
		if err := api.Signal(syscall.SIGSTOP); err != nil {
			return 0, back, ready, err
		}
		waitErr := sleepCtx(ctx, o.Outage)
		back = time.Now()
		if err := api.Signal(syscall.SIGCONT); err != nil {
			return 0, back, ready, err
		}
		if waitErr != nil {
			return 0, back, ready, waitErr
		}
		c, err := l.KubeClient()
		if err != nil {
			return 0, back, ready, err
		}
		if err := c.Get(ctx, client.ObjectKey{Name: l.Nodes[0].Name}, &corev1.Node{}); err != nil {
			return 0, back, ready, fmt.Errorf("kube-apiserver after SIGCONT: %w", err)
		}
	case FaultKill:
		if err := api.Kill(); err != nil {
			return 0, back, ready, err
		}
		waitErr := sleepCtx(ctx, o.Outage)
		back = time.Now()
		if err := l.RestartAPIServer(ctx); err != nil {
			return 0, back, ready, err
		}
		if waitErr != nil {
			return 0, back, ready, waitErr
		}
	default:
		return 0, back, ready, fmt.Errorf("unknown API fault %q (want %s or %s)", o.Fault, FaultStop, FaultKill)
	}
	return back.Sub(start).Round(100 * time.Millisecond), back, time.Now(), nil
}

// loadAverage is the machine's 1-minute load average, "?" if unknown.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

func faultName(fault string) string {
	if fault == FaultKill {
		return "kube-apiserver killed (SIGKILL) and started again"
	}
	return "kube-apiserver stopped (SIGSTOP) and continued (SIGCONT)"
}

func returnVerb(fault string) string {
	if fault == FaultKill {
		return "started again"
	}
	return "continued"
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// Request is one API request of an agent, from the audit log.
type Request struct {
	At    time.Time // when kube-apiserver received it
	Agent string    // the node whose agent sent it
	What  string    // verb and resource: "patch nodeagents/status"
	Code  int       // the answer's status code, 0 if none was recorded
	// Abandoned: the agent had given the request up before kube-apiserver handled it.
	Abandoned bool
}

// agentRequests picks the agents' requests from audit events, naming each agent by its
// node: the node of the Pod its token is bound to, else of its source address. others
// counts the events of other users.
func agentRequests(l *lab.Lab, events []lab.AuditEvent, agentUser string) (reqs []Request, others int) {
	byAddr := map[string]string{}
	for _, n := range l.Nodes {
		byAddr[n.IPv4.String()] = n.Name
		byAddr[n.IPv6.String()] = n.Name
	}
	for _, e := range events {
		if e.User.Username != agentUser {
			others++
			continue
		}
		agent := ""
		if pod := e.User.Extra["authentication.kubernetes.io/pod-name"]; len(pod) == 1 {
			agent = strings.TrimPrefix(pod[0], "vigil-agent-")
		} else if len(e.SourceIPs) > 0 {
			agent = cmp.Or(byAddr[e.SourceIPs[0]], e.SourceIPs[0])
		}
		r := Request{At: e.RequestReceived, Agent: agent, What: e.Verb + " " + e.Resource(), Abandoned: e.Abandoned()}
		if e.ResponseStatus != nil {
			r.Code = e.ResponseStatus.Code
		}
		reqs = append(reqs, r)
	}
	return reqs, others
}

// nodeAgentWrite is the request of an agent's NodeAgent report (heartbeat or change).
const nodeAgentWrite = "patch nodeagents/status"

// Pattern is the requests of a time window in buckets.
type Pattern struct {
	From, To, Ref time.Time // the window, and the time offsets are counted from
	Bucket        time.Duration
	Counts        []int          // requests per bucket
	Agents        []int          // distinct agents per bucket
	What          map[string]int // requests by verb and resource
	Failed        map[string]int // of those, answered with a status >= 400
	Abandoned     int            // requests the agents had given up (lab.AuditEvent.Abandoned)
	PeakWhat      map[string]int // the peak bucket's requests by verb and resource
	PerAgent      map[string]AgentRequests
}

// AgentRequests is one agent's requests in a window: offsets from the window's Ref.
type AgentRequests struct {
	Count       int
	First, Last time.Duration
	// FirstWrite is the first NodeAgent report (nodeAgentWrite); HasWrite says there was one.
	FirstWrite time.Duration
	HasWrite   bool
}

// BinRequests puts the requests received in [from, to) into buckets of width bucket;
// offsets are counted from ref.
func BinRequests(reqs []Request, from, to, ref time.Time, bucket time.Duration) Pattern {
	n := int((to.Sub(from) + bucket - 1) / bucket)
	p := Pattern{From: from, To: to, Ref: ref, Bucket: bucket, Counts: make([]int, n), Agents: make([]int, n),
		What: map[string]int{}, Failed: map[string]int{}, PeakWhat: map[string]int{}, PerAgent: map[string]AgentRequests{}}
	agents := make([]map[string]bool, n)
	var in []Request
	for _, r := range reqs {
		if r.At.Before(from) || !r.At.Before(to) {
			continue
		}
		in = append(in, r)
		i := int(r.At.Sub(from) / bucket)
		p.Counts[i]++
		if agents[i] == nil {
			agents[i] = map[string]bool{}
		}
		agents[i][r.Agent] = true
		p.What[r.What]++
		if r.Code >= 400 {
			p.Failed[r.What]++
		}
		if r.Abandoned {
			p.Abandoned++
		}
		p.addToAgent(r)
	}
	for i, a := range agents {
		p.Agents[i] = len(a)
	}
	peak := p.Peak()
	for _, r := range in {
		if int(r.At.Sub(from)/bucket) == peak {
			p.PeakWhat[r.What]++
		}
	}
	return p
}

func (p *Pattern) addToAgent(r Request) {
	off := r.At.Sub(p.Ref)
	a, seen := p.PerAgent[r.Agent]
	if !seen || off < a.First {
		a.First = off
	}
	if !seen || off > a.Last {
		a.Last = off
	}
	if r.What == nodeAgentWrite && (!a.HasWrite || off < a.FirstWrite) {
		a.FirstWrite, a.HasWrite = off, true
	}
	a.Count++
	p.PerAgent[r.Agent] = a
}

// Total is the number of requests in the window.
func (p Pattern) Total() int {
	t := 0
	for _, c := range p.Counts {
		t += c
	}
	return t
}

// Peak is the index of the first bucket with the most requests.
func (p Pattern) Peak() int {
	peak := 0
	for i, c := range p.Counts {
		if c > p.Counts[peak] {
			peak = i
		}
	}
	return peak
}

// offset is bucket i's start, from Ref.
func (p Pattern) offset(i int) time.Duration {
	return p.From.Add(time.Duration(i) * p.Bucket).Sub(p.Ref)
}

// WritePattern writes p for people: totals, the peak bucket, how many buckets had how
// many requests, a grid of the buckets (a row per second), and with perAgent each agent's
// first request and first NodeAgent report.
func WritePattern(w io.Writer, title string, p Pattern, perAgent bool) {
	_, _ = fmt.Fprintf(w, "\n## %s\n\n", title)
	secs := p.To.Sub(p.From).Seconds()
	_, _ = fmt.Fprintf(w, "%d requests from %d agents in %.1f s (%.1f/s); by request: %s\n", p.Total(), len(p.PerAgent), secs,
		float64(p.Total())/secs, countsLine(p.What, p.Failed))
	peak := p.Peak()
	if p.Abandoned > 0 {
		_, _ = fmt.Fprintf(w, "%d of them abandoned: the agent had given the request up (answered \"context canceled\": sent while kube-apiserver was stopped, read when it went on)\n",
			p.Abandoned)
	}
	_, _ = fmt.Fprintf(w, "peak %v bucket: %d requests from %d agents at %+.1f s (%s)\n", p.Bucket, p.Counts[peak], p.Agents[peak],
		p.offset(peak).Seconds(), countsLine(p.PeakWhat, nil))
	_, _ = fmt.Fprintf(w, "buckets by requests in them: %s\n\n", bucketSizes(p.Counts))
	writeGrid(w, p)
	if perAgent {
		writePerAgent(w, p)
	}
}

// writeGrid writes the buckets, a row per second.
func writeGrid(w io.Writer, p Pattern) {
	perRow := int(time.Second / p.Bucket)
	if perRow < 1 {
		perRow = 1
	}
	_, _ = fmt.Fprintf(w, "%8s |", "s \\ +ms")
	for j := range perRow {
		_, _ = fmt.Fprintf(w, " %3d", time.Duration(j)*p.Bucket/time.Millisecond)
	}
	_, _ = fmt.Fprintln(w, " | sum")
	for i := 0; i < len(p.Counts); i += perRow {
		_, _ = fmt.Fprintf(w, "%+8.1f |", p.offset(i).Seconds())
		sum := 0
		for j := i; j < i+perRow && j < len(p.Counts); j++ {
			_, _ = fmt.Fprintf(w, " %3d", p.Counts[j])
			sum += p.Counts[j]
		}
		_, _ = fmt.Fprintf(w, " | %3d\n", sum)
	}
}

// writePerAgent writes each agent's first request and first NodeAgent report, and their
// spreads across the agents.
func writePerAgent(w io.Writer, p Pattern) {
	names := slices.SortedFunc(maps.Keys(p.PerAgent), func(a, b string) int {
		return cmp.Or(cmp.Compare(p.PerAgent[a].First, p.PerAgent[b].First), strings.Compare(a, b))
	})
	_, _ = fmt.Fprintf(w, "\n%-8s %14s %20s %9s\n", "agent", "first request", "first NodeAgent write", "requests")
	var firsts, writes []time.Duration
	for _, name := range names {
		a := p.PerAgent[name]
		firsts = append(firsts, a.First)
		write := "-"
		if a.HasWrite {
			writes = append(writes, a.FirstWrite)
			write = fmt.Sprintf("%+.2f s", a.FirstWrite.Seconds())
		}
		_, _ = fmt.Fprintf(w, "%-8s %12s %20s %9d\n", name, fmt.Sprintf("%+.2f s", a.First.Seconds()), write, a.Count)
	}
	_, _ = fmt.Fprintf(w, "spread of the agents' first requests: %s; of their first NodeAgent writes: %s\n", spread(firsts), spread(writes))
}

// spread is "first +a s, last +b s: c s" of offsets.
func spread(offs []time.Duration) string {
	if len(offs) == 0 {
		return "none"
	}
	lo, hi := slices.Min(offs), slices.Max(offs)
	return fmt.Sprintf("%+.2f s to %+.2f s = %.2f s", lo.Seconds(), hi.Seconds(), (hi - lo).Seconds())
}

// countsLine is "what n, ..." by count, most first; failed adds "(k failed)".
func countsLine(counts, failed map[string]int) string {
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b string) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), strings.Compare(a, b))
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		s := fmt.Sprintf("%s %d", k, counts[k])
		if failed[k] > 0 {
			s += fmt.Sprintf(" (%d failed)", failed[k])
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// bucketSizes is "requests×buckets" for every bucket size present: "0×150 1×40 2×8".
func bucketSizes(counts []int) string {
	sizes := map[int]int{}
	for _, c := range counts {
		sizes[c]++
	}
	parts := make([]string, 0, len(sizes))
	for _, size := range slices.Sorted(maps.Keys(sizes)) {
		parts = append(parts, fmt.Sprintf("%d×%d", size, sizes[size]))
	}
	return strings.Join(parts, " ")
}
