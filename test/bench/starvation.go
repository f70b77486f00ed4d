package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigil.dev/vigil/test/lab"
)

// The starvation benchmark: no fault at all, only busy loops on every node (StarveNodes)
// for a while; whatever moves the VIP's holder meanwhile is a false failover, and every
// stretch in which the client gets no good answer is time without a holder.

// StarvationOptions configure a starvation run.
type StarvationOptions struct {
	// Burners lists the busy loops per node of each round, in order.
	Burners []int
	// Duration is how long the burners run in each round.
	Duration time.Duration
	// Recover is the time after the burners stop that still counts: a move back, or an
	// outage that starvation began, shows there.
	Recover time.Duration
	// VIP is the URL of the VIP's HTTP service.
	VIP  string
	Logf func(format string, args ...any)
}

// StarvationRow is one system and burner count of docs/bench/starvation.json.
type StarvationRow struct {
	System         string `json:"system"`
	BurnersPerNode int    `json:"burners_per_node"`
	Burners        int    `json:"burners"` // on every node together
	// FalseFailovers counts changes of the node answering the client (no fault called for
	// any): the recorder's owner changes.
	FalseFailovers int `json:"false_failovers"`
	// SecondsWithoutHolder sums the client's outages: from the last good answer before
	// failed requests to the next good answer.
	SecondsWithoutHolder float64 `json:"seconds_without_holder"`
	Outages              int     `json:"outages"`
	LongestOutageMS      float64 `json:"longest_outage_ms"`
	// LongestGapMS is the longest time between two good answers, failures or not: the
	// recorder is starved too, and a gap without failures is its own stall.
	LongestGapMS   float64        `json:"longest_gap_ms"`
	Requests       int            `json:"requests"`
	FailedRequests int            `json:"failed_requests"`
	Errors         map[string]int `json:"errors,omitempty"`
	OwnerBefore    string         `json:"owner_before"`
	OwnerAfter     string         `json:"owner_after"`
	// Moves lists the client's owner changes, "+12.34s node-a -> node-b" from the burners' start.
	Moves []string `json:"moves,omitempty"`
	// ControllerOwnerChanges counts Vigil's controller's "owner changed" decisions for the
	// VirtualIP; ControllerMoves says each, with its reason.
	ControllerOwnerChanges *int     `json:"controller_owner_changes,omitempty"`
	ControllerMoves        []string `json:"controller_moves,omitempty"`
	// MasterTransitions counts keepalived's "Entering MASTER STATE" lines on every node.
	MasterTransitions *int `json:"master_transitions,omitempty"`
	// LogEvents counts the processes' state-change log lines in the window, by process and
	// message: what a false failover is read from.
	LogEvents map[string]int `json:"log_events,omitempty"`
	// Load1Before and Load1End are the machine's 1-minute load average before the burners
	// and as they stop.
	Load1Before float64 `json:"load1_before"`
	Load1End    float64 `json:"load1_end"`
}

// StarvationReport is docs/bench/starvation.json.
type StarvationReport struct {
	Date      string          `json:"date"`
	Machine   string          `json:"machine"`
	Nodes     int             `json:"nodes"`
	DurationS float64         `json:"duration_s"`
	RecoverS  float64         `json:"recover_s"`
	Rows      []StarvationRow `json:"rows"`
}

// StarvationCount is what the client saw in a window of a recording.
type StarvationCount struct {
	Requests, Failed int
	// OwnerChanges counts changes of the answering node among good answers, in order of
	// start; the last good answer before the window is where it starts from.
	OwnerChanges int
	// Changes dates each owner change (the first good answer from the new node).
	Changes []OwnerChange
	// Outages is every stretch with failed requests and no good answer: from the last good
	// answer before it (or the window's start) to the next good answer (or the window's end).
	Outages []time.Duration
	// WithoutHolder sums Outages.
	WithoutHolder time.Duration
	// LongestGap is the longest time between two good answers (or the window's ends).
	LongestGap time.Duration
	// Errors counts failed requests by error.
	Errors map[string]int
	// OwnerBefore answered last before the window; OwnerAfter last in it.
	OwnerBefore, OwnerAfter string
}

// OwnerChange is one change of the node answering the client.
type OwnerChange struct {
	At       time.Time
	From, To string
}

// CountStarvation measures, from a recording's samples (in order of start), what the
// client saw of requests started in [from, to): owner changes among good answers, and
// outages — a stretch of failed requests counts from the last good answer before it to
// the next one, as the failover benchmark measures an outage; one still open at to counts
// until to. A gap between good answers without any failure in it is no outage (the
// recorder itself was not scheduled) but counts for LongestGap. Pure.
func CountStarvation(samples []lab.Sample, from, to time.Time) StarvationCount {
	c := StarvationCount{Errors: map[string]int{}}
	var lastOK time.Time
	for _, s := range samples {
		if s.OK && s.Start.Before(from) {
			lastOK, c.OwnerBefore = s.Start, s.Node
		}
	}
	gapFrom := lastOK
	if gapFrom.IsZero() {
		gapFrom = from
	}
	owner, failing := c.OwnerBefore, false
	closeGap := func(at time.Time) {
		gap := at.Sub(gapFrom)
		c.LongestGap = max(c.LongestGap, gap)
		if failing {
			c.Outages = append(c.Outages, gap)
			c.WithoutHolder += gap
		}
	}
	for _, s := range samples {
		if s.Start.Before(from) || !s.Start.Before(to) {
			continue
		}
		c.Requests++
		if !s.OK {
			c.Failed++
			c.Errors[s.Err]++
			failing = true
			continue
		}
		closeGap(s.Start)
		gapFrom, failing = s.Start, false
		if owner != "" && s.Node != owner {
			c.OwnerChanges++
			c.Changes = append(c.Changes, OwnerChange{At: s.Start, From: owner, To: s.Node})
		}
		owner = s.Node
	}
	closeGap(to)
	c.OwnerAfter = owner
	return c
}

// RunStarvation starts sys on lab l and runs one round per burner count: it waits until
// one node has answered the VIP steadily for sys.Settle(), starves every node for
// o.Duration, and counts what the client saw until o.Recover after the burners stopped.
func RunStarvation(ctx context.Context, l *lab.Lab, sys FailoverSystem, o StarvationOptions) ([]StarvationRow, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if err := sys.Start(l); err != nil {
		return nil, err
	}
	var rows []StarvationRow
	for _, n := range o.Burners {
		if err := ctx.Err(); err != nil {
			return rows, err
		}
		row, err := starveRound(ctx, l, sys, n, o)
		if err != nil {
			return rows, fmt.Errorf("%s with %d burners per node: %w", sys.Name(), n, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// starveRound is one round of RunStarvation.
func starveRound(ctx context.Context, l *lab.Lab, sys FailoverSystem, perNode int, o StarvationOptions) (StarvationRow, error) {
	row := StarvationRow{System: sys.Name(), BurnersPerNode: perNode, Burners: perNode * len(l.Nodes)}
	settle := time.Minute + sys.Settle()
	rec, err := l.StartRecorder(lab.RecordOptions{URL: o.VIP, Duration: settle + o.Duration + o.Recover + time.Minute})
	if err != nil {
		return row, err
	}
	defer func() { _, _ = rec.Stop() }()
	steady := int(sys.Settle() / (10 * time.Millisecond))
	samples, err := rec.WaitFor(settle, func(s []lab.Sample) bool { return steadyOwner(s, steady) != "" })
	if err != nil {
		return row, fmt.Errorf("the VIP never answered steadily from one node: %w (last answers: %s)", err, lastAnswers(samples, 5))
	}
	logs := markLogs(l, sys)
	row.Load1Before = load1()
	o.Logf("%s: %d burners per node (%d in all) for %v, owner %s, load %.2f", sys.Name(), perNode, row.Burners, o.Duration,
		steadyOwner(samples, steady), row.Load1Before)
	start := time.Now()
	burners, err := l.StarveNodes(perNode, o.Duration)
	if err != nil {
		for _, p := range burners {
			_ = p.Kill()
		}
		return row, err
	}
	waitErr := sleepCtx(ctx, time.Until(start.Add(o.Duration)))
	row.Load1End = load1()
	for _, p := range burners {
		if p.Wait(10*time.Second) != nil {
			_ = p.Kill()
		}
	}
	if waitErr == nil {
		waitErr = sleepCtx(ctx, time.Until(start.Add(o.Duration+o.Recover)))
	}
	end := time.Now()
	if samples, err = rec.Stop(); err != nil {
		return row, err
	}
	row.fill(CountStarvation(samples, start, end), start)
	row.readLogs(logs, start, end)
	o.Logf("%s", row.summary())
	return row, waitErr
}

// fill sets the row's client figures from c; start dates the moves.
func (r *StarvationRow) fill(c StarvationCount, start time.Time) {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }
	r.FalseFailovers, r.Requests, r.FailedRequests = c.OwnerChanges, c.Requests, c.Failed
	r.SecondsWithoutHolder = math.Round(c.WithoutHolder.Seconds()*1000) / 1000
	r.Outages, r.LongestGapMS = len(c.Outages), ms(c.LongestGap)
	r.LongestOutageMS = ms(slices.Max(append([]time.Duration{0}, c.Outages...)))
	r.OwnerBefore, r.OwnerAfter = c.OwnerBefore, c.OwnerAfter
	if len(c.Errors) > 0 {
		r.Errors = c.Errors
	}
	for _, ch := range c.Changes {
		r.Moves = append(r.Moves, fmt.Sprintf("%+.2fs %s -> %s", ch.At.Sub(start).Seconds(), ch.From, ch.To))
	}
}

// summary is the row in one line, for the run's log.
func (r *StarvationRow) summary() string {
	s := fmt.Sprintf("%s, %d burners per node: %d false failovers, %.3f s without holder (%d outages, longest %.0f ms), %d/%d requests failed, longest gap %.0f ms, load %.1f",
		r.System, r.BurnersPerNode, r.FalseFailovers, r.SecondsWithoutHolder, r.Outages, r.LongestOutageMS, r.FailedRequests, r.Requests, r.LongestGapMS, r.Load1End)
	if r.ControllerOwnerChanges != nil {
		s += fmt.Sprintf(", controller owner changes %d", *r.ControllerOwnerChanges)
	}
	if r.MasterTransitions != nil {
		s += fmt.Sprintf(", keepalived MASTER transitions %d", *r.MasterTransitions)
	}
	for _, m := range r.Moves {
		s += "\n  client: " + m
	}
	for _, m := range r.ControllerMoves {
		s += "\n  controller: " + m
	}
	keys := slices.Sorted(maps.Keys(r.LogEvents))
	for _, k := range keys {
		s += fmt.Sprintf("\n  log: %s x%d", k, r.LogEvents[k])
	}
	return s
}

// logMark is where a process's log stood when a round began.
type logMark struct {
	process string // "controller", or the node's name
	kind    string // "vigil" (JSON lines) or "keepalived"
	path    string
	offset  int64
}

// markLogs notes the length of the logs of sys's processes: the round reads what follows.
func markLogs(l *lab.Lab, sys FailoverSystem) []logMark {
	var names [][3]string
	switch sys.(type) {
	case *Vigil:
		names = append(names, [3]string{"controller", "vigil", "cp/vigil-controller"})
		for _, n := range l.Nodes {
			names = append(names, [3]string{n.Name, "vigil", n.Name + "/vigil-agent"})
		}
	case *Keepalived:
		for _, n := range l.Nodes {
			names = append(names, [3]string{n.Name, "keepalived", n.Name + "/keepalived"})
		}
	}
	var marks []logMark
	for _, n := range names {
		p, ok := l.Process(n[2])
		if !ok {
			continue
		}
		m := logMark{process: n[0], kind: n[1], path: p.LogPath}
		if fi, err := os.Stat(p.LogPath); err == nil {
			m.offset = fi.Size()
		}
		marks = append(marks, m)
	}
	return marks
}

// readLogs counts the state changes the processes logged in [start, end).
func (r *StarvationRow) readLogs(marks []logMark, start, end time.Time) {
	events := map[string]int{}
	var changes, masters int
	for _, m := range marks {
		lines, err := linesSince(m.path, m.offset)
		if err != nil {
			events["reading "+m.process+"'s log: "+err.Error()]++
			continue
		}
		for _, line := range lines {
			if m.kind == "keepalived" {
				if strings.Contains(line, "Entering MASTER STATE") {
					masters++
				}
				if k, ok := keepalivedEvent(line); ok {
					events[m.process+": "+k]++
				}
				continue
			}
			var ll logLine
			if json.Unmarshal([]byte(line), &ll) != nil || ll.TS.Before(start) || !ll.TS.Before(end) {
				continue
			}
			if m.process == "controller" && ll.Msg == "owner changed" && ll.Name == benchVIPName {
				changes++
				r.ControllerMoves = append(r.ControllerMoves, fmt.Sprintf("%+.2fs %s -> %s: %s", ll.TS.Sub(start).Seconds(), orNone(ll.From), orNone(ll.To), reasonOf(line)))
			}
			if k, ok := vigilEvent(ll); ok {
				events[m.process+": "+k]++
			}
		}
		switch m.kind {
		case "vigil":
			if m.process == "controller" {
				r.ControllerOwnerChanges = &changes
			}
		case "keepalived":
			r.MasterTransitions = &masters
		}
	}
	if len(events) > 0 {
		r.LogEvents = events
	}
}

// vigilEvent names a state change a Vigil process logged, or false for routine lines.
func vigilEvent(ll logLine) (string, bool) {
	msg := ll.Msg
	for _, p := range []string{"memberlist: Suspect ", "memberlist: Marking ", "memberlist: Failed ", "memberlist: Refuting"} {
		if strings.HasPrefix(msg, p) {
			// The same failure with another port is the same event.
			for _, op := range []string{": read ", ": write ", ": dial "} {
				if i := strings.Index(msg, op); i > 0 {
					msg = msg[:i]
				}
			}
			return shorten(msg, 90), true
		}
	}
	switch {
	case strings.HasPrefix(msg, "node stopped answering"), strings.HasPrefix(msg, "node answers echo"):
		return msg + " (" + ll.Node + ")", true
	case strings.HasPrefix(msg, "memberlist member"):
		return msg + " (" + ll.Member + ")", true
	case msg == "health check changed":
		return msg + " (" + ll.State + ")", true
	case msg == "owner changed", msg == "bound VIP", msg == "released VIP", msg == "unbound VIP",
		strings.HasPrefix(msg, "isolated"), strings.HasPrefix(msg, "reachable again"), strings.HasPrefix(msg, "no majority"),
		strings.HasPrefix(msg, "the API server"), strings.HasPrefix(msg, "no controller can decide"),
		strings.Contains(msg, "leader"), strings.Contains(msg, "lease"):
		return shorten(msg, 90), true
	}
	return "", false
}

// keepalivedEvent names a VRRP state change in a keepalived log line.
func keepalivedEvent(line string) (string, bool) {
	for _, p := range []string{"Entering ", "received lower priority", "received higher priority", "Script", "Track file"} {
		if i := strings.Index(line, p); i >= 0 {
			return shorten(line[i:], 60), true
		}
	}
	return "", false
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func orNone(s string) string {
	if s == "" {
		return "nobody"
	}
	return s
}

// reasonOf reads the "reason" and "message" of a JSON log line.
func reasonOf(line string) string {
	var v struct {
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal([]byte(line), &v)
	return strings.TrimSpace(v.Reason + " " + v.Message)
}

// linesSince reads the lines of a log from offset (from the start if the file is shorter:
// a restarted process began it anew).
func linesSince(path string, offset int64) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	if fi, err := f.Stat(); err == nil && fi.Size() < offset {
		offset = 0
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out, sc.Err()
}

// load1 is the machine's 1-minute load average (0 when unreadable).
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b) + " 0")[0], 64)
	return f
}

// StarvationTable renders the report as a Markdown table.
func StarvationTable(rep StarvationReport) string {
	var b strings.Builder
	b.WriteString("| system | burners per node (in all) | false failovers | controller owner changes | s without holder | outages (longest ms) | failed requests | longest gap ms | load 1 min | date |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rep.Rows {
		ctrl := "—"
		if r.ControllerOwnerChanges != nil {
			ctrl = strconv.Itoa(*r.ControllerOwnerChanges)
		}
		fmt.Fprintf(&b, "| %s | %d (%d) | %d | %s | %.2f | %d (%.0f) | %d / %d | %.0f | %.1f | %s |\n",
			r.System, r.BurnersPerNode, r.Burners, r.FalseFailovers, ctrl, r.SecondsWithoutHolder, r.Outages, r.LongestOutageMS,
			r.FailedRequests, r.Requests, r.LongestGapMS, r.Load1End, rep.Date)
	}
	fmt.Fprintf(&b, "\n%d nodes, %.0f s of burners per round, counted until %.0f s after. Machine: %s\n", rep.Nodes, rep.DurationS, rep.RecoverS, rep.Machine)
	return b.String()
}

// Markers of the starvation table in docs/benchmarks.md.
const (
	StarvationTableStart = "<!-- starvation table: generated by make bench-starvation -->"
	StarvationTableEnd   = "<!-- end of starvation table -->"
)
