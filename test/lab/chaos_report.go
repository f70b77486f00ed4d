package lab

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// ChaosReport is docs/bench/chaos.json: what a chaos run did and saw. Times are offsets
// from the start of the fault phase.
type ChaosReport struct {
	Date            string         `json:"date"`
	Start           string         `json:"start"` // when the fault phase began (RFC 3339, UTC): to read the logs by
	Machine         string         `json:"machine"`
	DurationS       float64        `json:"duration_s"`
	Seed            uint64         `json:"seed"`
	Nodes           int            `json:"nodes"`
	Bounds          ChaosBounds    `json:"bounds"`
	FaultsByKind    map[string]int `json:"faults_by_kind"`
	Violations      ViolationList  `json:"violations"`
	LongestDoubleMS float64        `json:"longest_double_ms"`
	LongestGapMS    float64        `json:"longest_gap_ms"`
	// ByKind has, per fault kind, the longest double holding and gap that a fault of that
	// kind may have caused or stretched (see faultsAround; "none": no fault may have).
	ByKind []KindSummary `json:"by_kind"`
	VIPs   []VIPSummary  `json:"vips"`
	// FinalSettleMS is how long after the last fault every VirtualIP was Ready on the one
	// node holding it; -1 when that did not happen within FinalSettle.
	FinalSettleMS float64 `json:"final_settle_ms"`
	// LongWindows lists every double holding and gap of at least reportedWindow, violation
	// or not, to read a run's story from.
	LongWindows []WindowLine `json:"long_windows"`
	// ClientOutages lists the stretches of at least reportedWindow in which the client's
	// requests to a VIP all failed.
	ClientOutages []ClientOutageLine `json:"client_outages"`
	// AgentExits are agents that exited without a fault killing them (restarted at once).
	AgentExits  []AgentExitLine `json:"agent_exits"`
	Faults      []FaultLine     `json:"faults"`
	FaultErrors []string        `json:"fault_errors"`
	Observer    ObserverSummary `json:"observer"`
}

const (
	// reportedWindow is the shortest window the report lists.
	reportedWindow = time.Second
	// summaryWindows is how many of them the summary shows.
	summaryWindows = 30
)

// WindowLine is one double holding or gap in the report.
type WindowLine struct {
	AtS          float64  `json:"at_s"`
	VIP          string   `json:"vip"`
	Kind         string   `json:"kind"` // "double" or "gap"
	DurationMS   float64  `json:"duration_ms"`
	Holders      []string `json:"holders,omitempty"`
	ActiveFaults []string `json:"active_faults"`
}

// ClientOutageLine is a stretch in which every request of the client to a VIP failed, from
// the last success before to the first after: with a holder in the kernel (these are not
// gaps), a service that is down, or a client that still sends to a node that let go.
type ClientOutageLine struct {
	AtS          float64        `json:"at_s"`
	VIP          string         `json:"vip"`
	DurationMS   float64        `json:"duration_ms"`
	Before       string         `json:"before"` // the node that answered last before
	After        string         `json:"after"`  // the node that answered first after ("": none by the end)
	Errors       map[string]int `json:"errors"`
	ActiveFaults []string       `json:"active_faults"`
}

// clientOutage is a stretch of failed requests to one VIP.
type clientOutage struct {
	From, To      time.Time
	Before, After string
	Errors        map[string]int
}

// clientOutages finds the stretches in which every request to the VIP failed.
func clientOutages(obs Observations, vip string) []clientOutage {
	var out []clientOutage
	var cur *clientOutage
	lastOK, lastNode := obs.Start, ""
	for _, x := range obs.Client[vip] {
		if x.Start.Before(obs.Start) || x.Start.After(obs.End) {
			continue
		}
		switch {
		case !x.OK && cur == nil:
			cur = &clientOutage{From: lastOK, Before: lastNode, Errors: map[string]int{x.Err: 1}}
		case !x.OK:
			cur.Errors[x.Err]++
		case cur != nil:
			cur.To, cur.After = x.Start, x.Node
			out = append(out, *cur)
			cur = nil
		}
		if x.OK {
			lastOK, lastNode = x.Start, x.Node
		}
	}
	if cur != nil {
		cur.To = obs.End
		out = append(out, *cur)
	}
	return out
}

// longClientOutages lists the client outages of at least reportedWindow in time order.
func longClientOutages(obs Observations) []ClientOutageLine {
	out := []ClientOutageLine{}
	for _, v := range obs.VIPs {
		for _, o := range clientOutages(obs, v.Name) {
			if o.To.Sub(o.From) >= reportedWindow {
				out = append(out, ClientOutageLine{AtS: offsetS(obs.Start, o.From), VIP: v.Name, DurationMS: ms(o.To.Sub(o.From)),
					Before: o.Before, After: o.After, Errors: o.Errors, ActiveFaults: faultNames(obs.Start, faultsAround(obs.Faults, v.Name, o.From, obs.End))})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b ClientOutageLine) int { return cmp.Compare(a.AtS, b.AtS) })
	return out
}

// AgentExitLine is one agent that exited by itself.
type AgentExitLine struct {
	AtS  float64 `json:"at_s"`
	Node string  `json:"node"`
	Why  string  `json:"why"`
}

// ChaosBounds are the invariants' bounds the run was checked against.
type ChaosBounds struct {
	MaxDoubleHoldingMS        float64 `json:"max_double_holding_ms"`
	FailoverBudgetMS          float64 `json:"failover_budget_ms"`
	APIOutageBudgetMS         float64 `json:"api_outage_budget_ms"`
	ControllerRestartBudgetMS float64 `json:"controller_restart_budget_ms"`
	NewVIPBudgetMS            float64 `json:"new_vip_budget_ms"`
	FinalSettleMS             float64 `json:"final_settle_ms"`
}

// ViolationList counts and lists the violations.
type ViolationList struct {
	Count int             `json:"count"`
	List  []ViolationLine `json:"list"`
}

// ViolationLine is one violation in the report.
type ViolationLine struct {
	AtS          float64  `json:"at_s"`
	VIP          string   `json:"vip"`
	Kind         string   `json:"kind"`
	DurationMS   float64  `json:"duration_ms"`
	BoundMS      float64  `json:"bound_ms"`
	Detail       string   `json:"detail"`
	ActiveFaults []string `json:"active_faults"`
}

// KindSummary is one fault kind in the report.
type KindSummary struct {
	Kind            string  `json:"kind"`
	Count           int     `json:"count"`
	LongestDoubleMS float64 `json:"longest_double_ms"`
	LongestGapMS    float64 `json:"longest_gap_ms"`
}

// VIPSummary is one VirtualIP in the report.
type VIPSummary struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Check   string `json:"check"`
	// Requests and Failed count the client's requests; LongestClientOutageMS is the longest
	// time between two successful requests with failures between them.
	Requests              int     `json:"requests"`
	Failed                int     `json:"failed"`
	LongestClientOutageMS float64 `json:"longest_client_outage_ms"`
	Moves                 int     `json:"moves"` // changes of the answering node
	Doubles               int     `json:"doubles"`
	LongestDoubleMS       float64 `json:"longest_double_ms"`
	Gaps                  int     `json:"gaps"`
	LongestGapMS          float64 `json:"longest_gap_ms"`
	Violations            int     `json:"violations"`
}

// FaultLine is one injected fault: when it was applied and how long until it was undone.
type FaultLine struct {
	AtS    float64 `json:"at_s"`
	ForS   float64 `json:"for_s"`
	Kind   string  `json:"kind"`
	Target string  `json:"target,omitempty"`
	Err    string  `json:"err,omitempty"`
}

// ObserverSummary tells how well the run saw: a long kernel sampling interval (CPU
// starvation) makes windows coarser, and a stall of the whole machine shows as one.
type ObserverSummary struct {
	KernelSamples       int     `json:"kernel_samples"`
	MaxKernelIntervalMS float64 `json:"max_kernel_interval_ms"`
	ClientRequests      int     `json:"client_requests"`
	// Stalls are the kernel sampling intervals of observerStall or more: the lab process
	// was not scheduled, so neither, likely, were Vigil's.
	Stalls []StallLine `json:"stalls"`
}

// StallLine is one stall of the observer: when it began and how long it lasted.
type StallLine struct {
	AtS float64 `json:"at_s"`
	MS  float64 `json:"ms"`
}

// observerStall is the shortest sampling interval the report lists as a stall (ten
// intervals).
const observerStall = 10 * KernelSampleInterval

// ChaosMeta is what the report says about the run itself.
type ChaosMeta struct {
	Seed     uint64
	Duration time.Duration // the fault phase
	Nodes    int
	Machine  string
	// FinalSettle is how long after the last fault every VirtualIP settled; negative when
	// it did not within FinalSettle.
	FinalSettle time.Duration
}

// BuildChaosReport assembles the report from the observations, the checker's findings and
// the final state's violations.
func BuildChaosReport(meta ChaosMeta, obs Observations, f Findings, final []Violation) ChaosReport {
	r := ChaosReport{
		Date: obs.Start.UTC().Format(time.DateOnly), Start: obs.Start.UTC().Format(time.RFC3339Nano), Machine: meta.Machine, DurationS: meta.Duration.Seconds(),
		Seed: meta.Seed, Nodes: meta.Nodes, FaultsByKind: map[string]int{}, FinalSettleMS: -1,
		Bounds: ChaosBounds{
			MaxDoubleHoldingMS: ms(MaxDoubleHolding), FailoverBudgetMS: ms(FailoverBudget), APIOutageBudgetMS: ms(APIOutageBudget),
			ControllerRestartBudgetMS: ms(ControllerRestartBudget), NewVIPBudgetMS: ms(NewVIPBudget), FinalSettleMS: ms(FinalSettle),
		},
		Violations: ViolationList{List: []ViolationLine{}}, FaultErrors: []string{},
	}
	if meta.FinalSettle >= 0 {
		r.FinalSettleMS = ms(meta.FinalSettle)
	}
	for _, fr := range obs.Faults {
		r.FaultsByKind[string(fr.Kind)]++
		r.Faults = append(r.Faults, faultLine(obs.Start, fr))
		if fr.Err != "" {
			r.FaultErrors = append(r.FaultErrors, fmt.Sprintf("%s at +%.1fs: %s", fr.PlannedFault, fr.Applied.Sub(obs.Start).Seconds(), fr.Err))
		}
	}
	for _, v := range append(slices.Clone(f.Violations), final...) {
		r.Violations.List = append(r.Violations.List, violationLine(obs.Start, v))
	}
	r.Violations.Count = len(r.Violations.List)
	for _, w := range f.Doubles {
		r.LongestDoubleMS = max(r.LongestDoubleMS, ms(w.Duration()))
	}
	for _, w := range f.Gaps {
		r.LongestGapMS = max(r.LongestGapMS, ms(w.Duration()))
	}
	r.ByKind = kindSummaries(obs, f)
	r.LongWindows = longWindows(obs, f)
	r.ClientOutages = longClientOutages(obs)
	r.AgentExits = []AgentExitLine{}
	for _, e := range obs.AgentExits {
		r.AgentExits = append(r.AgentExits, AgentExitLine{AtS: offsetS(obs.Start, e.At), Node: e.Node, Why: e.Why})
	}
	for _, v := range obs.VIPs {
		r.VIPs = append(r.VIPs, vipSummary(obs, f, final, v))
	}
	r.Observer = observerSummary(obs)
	return r
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }

func offsetS(start, t time.Time) float64 { return math.Round(t.Sub(start).Seconds()*100) / 100 }

func faultLine(start time.Time, f FaultRecord) FaultLine {
	l := FaultLine{AtS: offsetS(start, f.Applied), Kind: string(f.Kind), Target: f.Target(), Err: f.Err}
	if !f.Undone.IsZero() {
		l.ForS = math.Round(f.Undone.Sub(f.Applied).Seconds()*100) / 100
	}
	return l
}

func violationLine(start time.Time, v Violation) ViolationLine {
	return ViolationLine{AtS: offsetS(start, v.At), VIP: v.VIP, Kind: v.Kind, DurationMS: ms(v.Duration), BoundMS: ms(v.Bound),
		Detail: v.Detail, ActiveFaults: faultNames(start, v.Faults)}
}

// faultNames names faults with the offset they were applied at.
func faultNames(start time.Time, faults []FaultRecord) []string {
	names := []string{}
	for _, f := range faults {
		names = append(names, fmt.Sprintf("%s (+%.1fs)", f.PlannedFault, f.Applied.Sub(start).Seconds()))
	}
	return names
}

// longWindows lists the windows of at least reportedWindow in time order.
func longWindows(obs Observations, f Findings) []WindowLine {
	out := []WindowLine{}
	add := func(kind string, ws []Window) {
		for _, w := range ws {
			if w.Duration() >= reportedWindow {
				out = append(out, WindowLine{AtS: offsetS(obs.Start, w.From), VIP: w.VIP, Kind: kind, DurationMS: ms(w.Duration()),
					Holders: w.Holders, ActiveFaults: faultNames(obs.Start, faultsAround(obs.Faults, w.VIP, w.From, obs.End))})
			}
		}
	}
	add("double", f.Doubles)
	add("gap", f.Gaps)
	slices.SortStableFunc(out, func(a, b WindowLine) int { return cmp.Compare(a.AtS, b.AtS) })
	return out
}

// kindSummaries counts faults per kind and lays each window at the door of the kinds
// that may have caused it ("none" when no fault may have).
func kindSummaries(obs Observations, f Findings) []KindSummary {
	byKind := map[string]*KindSummary{}
	get := func(k string) *KindSummary {
		if byKind[k] == nil {
			byKind[k] = &KindSummary{Kind: k}
		}
		return byKind[k]
	}
	for _, fr := range obs.Faults {
		get(string(fr.Kind)).Count++
	}
	attribute := func(w Window, set func(*KindSummary, float64)) {
		kinds := map[string]bool{}
		for _, fr := range faultsAround(obs.Faults, w.VIP, w.From, obs.End) {
			kinds[string(fr.Kind)] = true
		}
		if len(kinds) == 0 {
			kinds["none"] = true
		}
		for k := range kinds {
			set(get(k), ms(w.Duration()))
		}
	}
	for _, w := range f.Doubles {
		attribute(w, func(s *KindSummary, d float64) { s.LongestDoubleMS = max(s.LongestDoubleMS, d) })
	}
	for _, w := range f.Gaps {
		attribute(w, func(s *KindSummary, d float64) { s.LongestGapMS = max(s.LongestGapMS, d) })
	}
	var out []KindSummary
	for _, k := range append(kindNames(), "none") {
		if s, ok := byKind[k]; ok {
			out = append(out, *s)
		}
	}
	return out
}

func kindNames() []string {
	names := make([]string, len(FaultKinds))
	for i, k := range FaultKinds {
		names[i] = string(k)
	}
	return names
}

// vipSummary sums up one VIP: the client's view, its windows and violations.
func vipSummary(obs Observations, f Findings, final []Violation, v ChaosVIP) VIPSummary {
	s := VIPSummary{Name: v.Name, Address: v.Address.String(), Check: "none"}
	if v.Checked {
		s.Check = "tcp"
	}
	lastNode := ""
	for _, x := range obs.Client[v.Name] {
		if x.Start.Before(obs.Start) || x.Start.After(obs.End) {
			continue
		}
		s.Requests++
		if !x.OK {
			s.Failed++
			continue
		}
		if lastNode != "" && x.Node != lastNode {
			s.Moves++
		}
		lastNode = x.Node
	}
	for _, o := range clientOutages(obs, v.Name) {
		s.LongestClientOutageMS = max(s.LongestClientOutageMS, ms(o.To.Sub(o.From)))
	}
	for _, w := range f.Doubles {
		if w.VIP == v.Name {
			s.Doubles++
			s.LongestDoubleMS = max(s.LongestDoubleMS, ms(w.Duration()))
		}
	}
	for _, w := range f.Gaps {
		if w.VIP == v.Name {
			s.Gaps++
			s.LongestGapMS = max(s.LongestGapMS, ms(w.Duration()))
		}
	}
	for _, x := range append(slices.Clone(f.Violations), final...) {
		if x.VIP == v.Name {
			s.Violations++
		}
	}
	return s
}

func observerSummary(obs Observations) ObserverSummary {
	o := ObserverSummary{Stalls: []StallLine{}}
	var prev time.Time
	for _, s := range obs.Kernel {
		if s.At.Before(obs.Start) || s.At.After(obs.End) {
			continue
		}
		if !prev.IsZero() {
			o.MaxKernelIntervalMS = max(o.MaxKernelIntervalMS, ms(s.At.Sub(prev)))
			if s.At.Sub(prev) >= observerStall {
				o.Stalls = append(o.Stalls, StallLine{AtS: offsetS(obs.Start, prev), MS: ms(s.At.Sub(prev))})
			}
		}
		prev = s.At
		o.KernelSamples++
	}
	for _, samples := range obs.Client {
		for _, x := range samples {
			if !x.Start.Before(obs.Start) && !x.Start.After(obs.End) {
				o.ClientRequests++
			}
		}
	}
	return o
}

// WriteChaosReport writes the report as indented JSON.
func WriteChaosReport(path string, r ChaosReport) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the chaos report: %w", err)
	}
	return nil
}

// Summary renders the report for people: the verdict per invariant, tables per fault kind
// and per VIP, then the violations and what else stood out.
func (r ChaosReport) Summary() string {
	var b strings.Builder
	r.writeVerdict(&b)
	r.writeTables(&b)
	r.writeViolations(&b)
	r.writeStory(&b)
	return b.String()
}

// Verdict is the summary's first lines (a line per invariant) and its violations.
func (r ChaosReport) Verdict() string {
	var b strings.Builder
	r.writeVerdict(&b)
	r.writeViolations(&b)
	return b.String()
}

// writeVerdict writes a line per invariant.
func (r ChaosReport) writeVerdict(b *strings.Builder) {
	total := 0
	for _, n := range r.FaultsByKind {
		total += n
	}
	fmt.Fprintf(b, "chaos: %d nodes, %d VIPs, %v of faults (seed %d): %d faults, %d violations\n",
		r.Nodes, len(r.VIPs), time.Duration(r.DurationS*float64(time.Second)), r.Seed, total, r.Violations.Count)
	fmt.Fprintf(b, "  1. never two holders longer than %v: longest double holding %v\n", msDuration(r.Bounds.MaxDoubleHoldingMS), msDuration(r.LongestDoubleMS))
	fmt.Fprintf(b, "  2. never no holder longer than %v (%v API stopped, %v controller not leading, %v re-created VIP): longest gap %v\n",
		msDuration(r.Bounds.FailoverBudgetMS), msDuration(r.Bounds.APIOutageBudgetMS), msDuration(r.Bounds.ControllerRestartBudgetMS), msDuration(r.Bounds.NewVIPBudgetMS), msDuration(r.LongestGapMS))
	if r.FinalSettleMS >= 0 {
		fmt.Fprintf(b, "  3. every VirtualIP Ready on its one holder %v after the last fault\n", msDuration(r.FinalSettleMS))
	} else {
		fmt.Fprintf(b, "  3. NOT every VirtualIP Ready on its one holder %v after the last fault\n", msDuration(r.Bounds.FinalSettleMS))
	}
}

// writeTables writes the per-kind and per-VIP tables.
func (r ChaosReport) writeTables(b *strings.Builder) {
	rows := [][]string{{"fault kind", "count", "longest double", "longest gap"}}
	for _, k := range r.ByKind {
		rows = append(rows, []string{k.Kind, fmt.Sprint(k.Count), msDuration(k.LongestDoubleMS).String(), msDuration(k.LongestGapMS).String()})
	}
	b.WriteString("\n" + alignColumns(rows) + "\n")
	rows = [][]string{{"VIP", "address", "check", "requests", "failed", "longest client outage", "moves", "longest double", "longest gap", "violations"}}
	for _, v := range r.VIPs {
		rows = append(rows, []string{v.Name, v.Address, v.Check, fmt.Sprint(v.Requests), fmt.Sprint(v.Failed), msDuration(v.LongestClientOutageMS).String(),
			fmt.Sprint(v.Moves), msDuration(v.LongestDoubleMS).String(), msDuration(v.LongestGapMS).String(), fmt.Sprint(v.Violations)})
	}
	b.WriteString(alignColumns(rows))
}

// writeViolations lists the violations.
func (r ChaosReport) writeViolations(b *strings.Builder) {
	if r.Violations.Count > 0 {
		b.WriteString("\nviolations:\n")
	}
	for _, v := range r.Violations.List {
		fmt.Fprintf(b, "  +%.1fs %s %s %.1f ms (bound %.0f ms): %s; faults: %s\n", v.AtS, v.VIP, v.Kind,
			v.DurationMS, v.BoundMS, v.Detail, orNone(v.ActiveFaults))
	}
}

// writeFirst writes, under heading, a line for each of the first summaryWindows items and
// how many more the JSON report has; nothing when there are no items.
func writeFirst[T any](b *strings.Builder, heading string, items []T, line func(T) string) {
	if len(items) > 0 {
		fmt.Fprintf(b, "\n%s:\n", heading)
	}
	for i, item := range items {
		if i == summaryWindows {
			fmt.Fprintf(b, "  ... and %d more (see the JSON report)\n", len(items)-i)
			break
		}
		b.WriteString("  " + line(item) + "\n")
	}
}

// writeStory writes what else stood out: long windows, client outages, agents that exited,
// faults that failed, and how well the observer kept up.
func (r ChaosReport) writeStory(b *strings.Builder) {
	writeFirst(b, fmt.Sprintf("windows of %v or more", reportedWindow), r.LongWindows, func(w WindowLine) string {
		return fmt.Sprintf("+%.1fs %s %s %v %s; faults: %s", w.AtS, w.VIP, w.Kind, msDuration(w.DurationMS), strings.Join(w.Holders, ","), orNone(w.ActiveFaults))
	})
	writeFirst(b, fmt.Sprintf("client outages of %v or more (every request failed)", reportedWindow), r.ClientOutages, func(o ClientOutageLine) string {
		return fmt.Sprintf("+%.1fs %s %v, %s -> %s, %s; faults: %s", o.AtS, o.VIP, msDuration(o.DurationMS), orDash(o.Before), orDash(o.After),
			countsText(o.Errors), orNone(o.ActiveFaults))
	})
	for _, e := range r.AgentExits {
		fmt.Fprintf(b, "agent exit: +%.1fs %s: %s\n", e.AtS, e.Node, e.Why)
	}
	for _, e := range r.FaultErrors {
		fmt.Fprintf(b, "fault error: %s\n", e)
	}
	fmt.Fprintf(b, "\nobserver: %d kernel samples (longest interval %v), %d client requests\n",
		r.Observer.KernelSamples, msDuration(r.Observer.MaxKernelIntervalMS), r.Observer.ClientRequests)
	for _, st := range r.Observer.Stalls {
		fmt.Fprintf(b, "observer stalled: +%.1fs for %v (the machine was starved: windows around it are coarse)\n", st.AtS, msDuration(st.MS))
	}
}

func msDuration(v float64) time.Duration {
	return time.Duration(v * float64(time.Millisecond)).Round(time.Millisecond)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// countsText renders counts as "refused x12, timeout x3", in name order.
func countsText(counts map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s x%d", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// alignColumns renders rows as columns padded to their widest cell, two spaces apart.
func alignColumns(rows [][]string) string {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len(cell))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, cell := range row {
			if i < len(row)-1 {
				cell += strings.Repeat(" ", widths[i]-len(cell)+2)
			}
			b.WriteString(cell)
		}
		b.WriteString("\n")
	}
	return b.String()
}
