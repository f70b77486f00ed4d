package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"vigil.dev/vigil/test/lab"
)

// systems are the failover implementations the benchmark knows.
func systemByName(name string) (lab.FailoverSystem, error) {
	switch name {
	case "keepalived-default":
		return &lab.Keepalived{VIP: lab.VIPv4(0)}, nil
	case "keepalived-tuned":
		return &lab.Keepalived{Tuned: true, VIP: lab.VIPv4(0)}, nil
	case "vigil":
		return &lab.Vigil{VIP: lab.VIPv4(0)}, nil
	}
	return nil, fmt.Errorf("unknown system %q (want vigil, keepalived-default or keepalived-tuned)", name)
}

// benchFailover runs the failover benchmark and writes docs/bench/failover.json and the
// table in docs/benchmarks.md.
func benchFailover(fs *flag.FlagSet, args []string) error {
	trials := fs.Int("trials", 20, "trials per system and scenario")
	systems := fs.String("systems", "vigil,keepalived-default,keepalived-tuned", "comma-separated systems")
	scenarios := fs.String("scenarios", strings.Join(lab.Scenarios, ","), "comma-separated scenarios")
	out := fs.String("out", "docs/bench/failover.json", "JSON results (rows of other systems are kept)")
	doc := fs.String("doc", "docs/benchmarks.md", "Markdown page whose failover table is regenerated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *trials < 1 || *trials > 1000 {
		return fmt.Errorf("--trials must be 1..1000")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var fresh []lab.BenchResult
	for _, name := range strings.Split(*systems, ",") {
		sys, err := systemByName(strings.TrimSpace(name))
		if err != nil {
			return err
		}
		results, benchErr := benchOne(ctx, sys, self, *trials, strings.Split(*scenarios, ","))
		fresh = append(fresh, results...)
		// Record every finished scenario, also when a later one failed.
		if err := record(*out, *doc, results); err != nil {
			return err
		}
		if benchErr != nil {
			return benchErr
		}
	}
	fmt.Println()
	fmt.Print(lab.Table(fresh))
	fmt.Printf("\nresults in %s and %s\n", *out, *doc)
	return nil
}

func record(out, doc string, results []lab.BenchResult) error {
	old, err := lab.ReadResults(out)
	if err != nil {
		return err
	}
	all := lab.MergeResults(old, results)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := lab.WriteResults(out, all); err != nil {
		return err
	}
	return lab.UpdateBenchmarksDoc(doc, all)
}

func benchOne(ctx context.Context, sys lab.FailoverSystem, self string, trials int, scenarios []string) ([]lab.BenchResult, error) {
	l, err := lab.Up(ctx, lab.Config{Nodes: 3, WithoutControlPlane: !sys.NeedsControlPlane(), HelperBin: self, Logf: logf})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := l.Down(); err != nil {
			logf("tearing down: %v", err)
		}
	}()
	if err := sys.Start(l); err != nil {
		return nil, err
	}
	return lab.RunFailoverBench(ctx, l, sys, lab.BenchOptions{
		Trials: trials, Scenarios: scenarios, Logf: logf,
		VIP: fmt.Sprintf("http://%s/", lab.VIPv4(0)),
	})
}
