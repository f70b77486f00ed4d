package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"vigil.dev/vigil/test/lab"
)

// ProbesOptions configure Probes.
type ProbesOptions struct {
	VIPs     int           // each with the Checks
	Duration time.Duration // measured, after a 5 s warm-up
	Checks   string        // comma-separated kinds: icmp, tcp, http
	// Distinct gives every VIP its own targets (127.0.0.x), so that no probe is shared.
	Distinct bool
}

// ProbeUsage is one JSON line of `labhelper probe-load`: the process's own figures at the
// start ("start") and the end ("end") of the measured window.
type ProbeUsage struct {
	At         string  `json:"at"`
	Wall       float64 `json:"wall"` // seconds since the process started
	CPU        float64 `json:"cpu"`  // user and system CPU seconds
	RSSMiB     float64 `json:"rssMiB"`
	Goroutines int     `json:"goroutines"`
	FDs        int     `json:"fds"`
	Probes     int64   `json:"probes"`
	Failed     int64   `json:"failed"`
}

// Probes measures the cost of the agent's probes: `labhelper probe-load` in the lab's
// first node runs o.VIPs × checks every second, as an agent does, and reports its CPU,
// memory, goroutines and file descriptors, which Probes writes to w as a Markdown table.
func Probes(ctx context.Context, l *lab.Lab, o ProbesOptions, w io.Writer) error {
	p, err := l.StartProcess(l.Nodes[0].Name, "probe-load", l.HelperBin, "probe-load", "--vips", strconv.Itoa(o.VIPs),
		"--for", o.Duration.String(), "--checks", o.Checks, fmt.Sprintf("--distinct=%v", o.Distinct))
	if err != nil {
		return err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if p.Err() != nil {
		return fmt.Errorf("probe-load: %w\n%s", p.Err(), p.Log())
	}
	var start, end ProbeUsage
	for _, line := range strings.Split(p.Log(), "\n") {
		var u ProbeUsage
		if json.Unmarshal([]byte(line), &u) == nil && u.At != "" {
			if u.At == "start" {
				start = u
			} else {
				end = u
			}
		}
	}
	window := end.Wall - start.Wall
	cpu := (end.CPU - start.CPU) / window * 100
	targets := "the same targets for every VIP (icmp to the gateway, tcp and http to the node's service): shared probes"
	if o.Distinct {
		targets = "distinct targets per VIP (127.0.0.x): no probe shared"
	}
	_, _ = fmt.Fprintf(w, "\n%d VIPs x checks %s every 1 s, %s; one process, %.0f s measured\n\n", o.VIPs, o.Checks, targets, window)
	_, _ = fmt.Fprintln(w, "| | start | end | goal |")
	_, _ = fmt.Fprintln(w, "|---|---:|---:|---|")
	_, _ = fmt.Fprintf(w, "| CPU (%% of one core) | | %.2f %% | <= 1 %% |\n", cpu)
	_, _ = fmt.Fprintf(w, "| RSS | %.1f MiB | %.1f MiB | no growth |\n", start.RSSMiB, end.RSSMiB)
	_, _ = fmt.Fprintf(w, "| goroutines | %d | %d | no growth |\n", start.Goroutines, end.Goroutines)
	_, _ = fmt.Fprintf(w, "| open file descriptors | %d | %d | no growth |\n", start.FDs, end.FDs)
	_, _ = fmt.Fprintf(w, "| probes run / failed (whole run) | | %d / %d | one per check per second, none failed |\n", end.Probes, end.Failed)
	return nil
}
