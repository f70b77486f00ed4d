package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"vigil.dev/vigil/test/bench"
	"vigil.dev/vigil/test/lab"
)

// benchApply applies VirtualIPs one by one to Vigil in a 3-node lab and measures how soon
// each answers the client, writing docs/bench/apply.json and the table in
// docs/benchmarks.md.
func benchApply(fs *flag.FlagSet, args []string) error {
	o := bench.ApplyOptions{Logf: logf}
	fs.IntVar(&o.VIPs, "vips", 50, "VirtualIPs per variant, applied one by one")
	variants := fs.String("variants", strings.Join(bench.ApplyVariants, ","), "comma-separated variants: tcp-check (the failover benchmark's check), no-checks")
	fs.DurationVar(&o.Pause, "pause", 200*time.Millisecond, "pause between a VIP's first answer and the next create")
	fs.StringVar(&o.Bin, "vigil", "", "vigil binary (default: built from this tree)")
	rf := addReportFlags(fs, "docs/bench/apply.json", "JSON results", "apply", "the lab's process logs")
	out, doc, logs, limit := rf.out, rf.doc, rf.logs, rf.limit
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Variants = strings.Split(*variants, ",")
	// The VIPs are the lab's 198.18.0.100 on, one address per VIP of every variant.
	if o.VIPs < 1 || o.VIPs*len(o.Variants) > 150 || *limit <= 0 || *limit > time.Hour {
		return errors.New("--vips from 1 to 150 in all variants, --max up to 1h")
	}
	var rep bench.ApplyReport
	err := withLab(lab.Config{Nodes: 3}, func(ctx context.Context, l *lab.Lab) error {
		ctx, cancel := context.WithTimeout(ctx, *limit)
		defer cancel()
		if *logs != "" {
			defer keepLabLogs(l, *logs)
		}
		var err error
		rep, err = bench.RunApply(ctx, l, o)
		return err
	})
	if err != nil {
		return err
	}
	return publishReport(*out, *doc, rep, bench.ApplyTable(rep), bench.ApplyTableStart, bench.ApplyTableEnd)
}

// benchScale creates many VirtualIPs at once over labs of real agents — by default 1000
// VIPs on 50 nodes, with node crashes, then 300 VIPs on 3 nodes — and writes
// docs/bench/scale.json and the table in docs/benchmarks.md.
func benchScale(fs *flag.FlagSet, args []string) error {
	o := bench.ScaleOptions{Logf: logf}
	runs := fs.String("runs", "1000x50,300x3", "comma-separated runs, VIPSxNODES")
	fs.BoolVar(&o.PinNeighbours, "pin-neighbours", true, "make the lab members' IPv4 neighbour entries permanent: the machine's one neighbour table (1024 entries) cannot hold 50 nodes' full mesh")
	fs.BoolVar(&o.Checks, "checks", false, "give every VirtualIP a TCP check of the node's HTTP service")
	fs.DurationVar(&o.Settle, "settle", 20*time.Second, "time after every VIP answers before the steady window")
	fs.DurationVar(&o.Steady, "steady", time.Minute, "steady window: API writes, CPU and memory")
	fs.IntVar(&o.Crashes, "crashes", 3, "node crashes in runs of more than 3 nodes (0: none)")
	fs.IntVar(&o.CrashVIPs, "crash-vips", 20, "crash the node owning the nearest count of VIPs")
	fs.DurationVar(&o.CrashEvery, "crash-every", 20*time.Millisecond, "the client's interval per VIP during a crash (each request a fresh connection: 20 VIPs at 20ms are 1000 a second)")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "longest wait for every VIP to be Ready and answering")
	fs.StringVar(&o.Bin, "vigil", "", "vigil binary (default: built from this tree)")
	failover := fs.String("failover", "docs/bench/failover.json", "failover results: Vigil's node-crash p99 is the crash goal's baseline")
	rf := addReportFlags(fs, "docs/bench/scale.json", "JSON results (runs of other sizes are kept)", "scale",
		"each run's process logs and audit log (a subdirectory per run)")
	out, doc, logs, limit := rf.out, rf.doc, rf.logs, rf.limit
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Settle < 0 || o.Steady < 10*time.Second || o.Steady > 10*time.Minute || o.Crashes < 0 || o.Crashes > 10 ||
		*limit <= 0 || *limit > time.Hour || o.CrashEvery < 5*time.Millisecond {
		return errors.New("--steady 10s..10m, --settle at least 0, --crashes 0..10, --crash-every at least 5ms, --max up to 1h")
	}
	deadline := time.Now().Add(*limit)
	if rows, err := bench.ReadResults(*failover); err == nil {
		for _, r := range rows {
			if r.System == "vigil" && r.Scenario == bench.ScenarioNodeCrash && r.LabNodes() == 3 {
				o.SingleVIPCrashP99ms = r.P99ms
			}
		}
	}
	var results []bench.ScaleRun
	for _, spec := range strings.Split(*runs, ",") {
		var vips, nodes int
		if _, err := fmt.Sscanf(strings.TrimSpace(spec), "%dx%d", &vips, &nodes); err != nil || vips < 1 || vips > 2000 || nodes < 1 || nodes > 60 {
			return fmt.Errorf("run %q: want VIPSxNODES, 1..2000 VIPs on 1..60 nodes", spec)
		}
		ro := o
		ro.VIPs = vips
		if nodes <= 3 {
			ro.Crashes = 0
		}
		logf("scale run: %d VirtualIPs on %d nodes", vips, nodes)
		var r bench.ScaleRun
		err := withLab(lab.Config{Nodes: nodes, AuditLog: true}, func(ctx context.Context, l *lab.Lab) error {
			ctx, cancel := context.WithDeadline(ctx, deadline)
			defer cancel()
			if *logs != "" {
				defer keepLabLogs(l, filepath.Join(*logs, fmt.Sprintf("%dx%d", vips, nodes)))
			}
			var err error
			r, err = bench.RunScale(ctx, l, ro)
			return err
		})
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	old, err := bench.ReadScaleRuns(*out)
	if err != nil {
		return err
	}
	rep := bench.NewScaleReport(time.Now().UTC().Format(time.DateOnly), lab.Machine(), bench.MergeScaleRuns(old, results))
	return publishReport(*out, *doc, rep, bench.ScaleTable(rep), bench.ScaleTableStart, bench.ScaleTableEnd)
}

// keepLabLogs copies the lab's process logs and its audit log (if any) to dir.
func keepLabLogs(l *lab.Lab, dir string) {
	err := copyLogs(filepath.Join(l.RunDir, "logs"), dir)
	if _, statErr := os.Stat(l.AuditLogPath()); statErr == nil {
		err = errors.Join(err, copyFile(l.AuditLogPath(), filepath.Join(dir, "audit.log")))
	}
	if err != nil {
		logf("keeping the logs: %v", err)
	} else {
		logf("logs kept in %s", dir)
	}
}
