package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
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
	out := fs.String("out", "docs/bench/apply.json", "JSON results")
	doc := fs.String("doc", "docs/benchmarks.md", "Markdown page whose apply table is regenerated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.VIPs < 1 || o.VIPs > 100 {
		return errors.New("--vips must be 1..100")
	}
	o.Variants = strings.Split(*variants, ",")
	var rep bench.ApplyReport
	err := withLab(lab.Config{Nodes: 3}, func(ctx context.Context, l *lab.Lab) error {
		var err error
		rep, err = bench.RunApply(ctx, l, o)
		return err
	})
	if err != nil {
		return err
	}
	if err := bench.WriteJSON(*out, rep); err != nil {
		return err
	}
	table := bench.ApplyTable(rep)
	if err := bench.ReplaceSection(*doc, bench.ApplyTableStart, bench.ApplyTableEnd, table); err != nil {
		return err
	}
	fmt.Print("\n" + table)
	fmt.Printf("\nresults in %s and %s\n", *out, *doc)
	return nil
}

// benchScale creates many VirtualIPs at once over labs of real agents — by default 1000
// VIPs on 50 nodes, with node crashes, then 300 VIPs on 3 nodes — and writes
// docs/bench/scale.json and the table in docs/benchmarks.md.
func benchScale(fs *flag.FlagSet, args []string) error {
	o := bench.ScaleOptions{Logf: logf}
	runs := fs.String("runs", "1000x50,300x3", "comma-separated runs, VIPSxNODES")
	fs.BoolVar(&o.Checks, "checks", false, "give every VirtualIP a TCP check of the node's HTTP service")
	fs.DurationVar(&o.Settle, "settle", 20*time.Second, "time after every VIP answers before the steady window")
	fs.DurationVar(&o.Steady, "steady", time.Minute, "steady window: API writes, CPU and memory")
	fs.IntVar(&o.Crashes, "crashes", 3, "node crashes in runs of more than 3 nodes (0: none)")
	fs.IntVar(&o.CrashVIPs, "crash-vips", 20, "crash the node owning the nearest count of VIPs")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "longest wait for every VIP to be Ready and answering")
	fs.StringVar(&o.Bin, "vigil", "", "vigil binary (default: built from this tree)")
	failover := fs.String("failover", "docs/bench/failover.json", "failover results: Vigil's node-crash p99 is the crash goal's baseline")
	out := fs.String("out", "docs/bench/scale.json", "JSON results")
	doc := fs.String("doc", "docs/benchmarks.md", "Markdown page whose scale table is regenerated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Settle < 0 || o.Steady < 10*time.Second || o.Steady > 10*time.Minute || o.Crashes < 0 || o.Crashes > 10 {
		return errors.New("--steady 10s..10m, --settle at least 0, --crashes 0..10")
	}
	if rows, err := bench.ReadResults(*failover); err == nil {
		for _, r := range rows {
			if r.System == "vigil" && r.Scenario == bench.ScenarioNodeCrash {
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
			var err error
			r, err = bench.RunScale(ctx, l, ro)
			return err
		})
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	rep := bench.NewScaleReport(time.Now().UTC().Format(time.DateOnly), lab.Machine(), results)
	if err := bench.WriteJSON(*out, rep); err != nil {
		return err
	}
	table := bench.ScaleTable(rep)
	if err := bench.ReplaceSection(*doc, bench.ScaleTableStart, bench.ScaleTableEnd, table); err != nil {
		return err
	}
	fmt.Print("\n" + table)
	fmt.Printf("\nresults in %s and %s\n", *out, *doc)
	return nil
}
