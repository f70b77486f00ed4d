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

// benchFailover runs the failover benchmark (package test/bench), a lab per system, and
// writes docs/bench/failover.json and the table in docs/benchmarks.md.
func benchFailover(fs *flag.FlagSet, args []string) error {
	trials := fs.Int("trials", 20, "trials per system and scenario")
	nodes := fs.Int("nodes", 3, "nodes in the lab (3..50): detection must not grow with the cluster")
	systems := fs.String("systems", strings.Join(bench.Systems, ","), "comma-separated systems")
	scenarios := fs.String("scenarios", strings.Join(bench.Scenarios, ","), "comma-separated scenarios")
	out := fs.String("out", "docs/bench/failover.json", "JSON results (rows of other systems are kept)")
	doc := fs.String("doc", "docs/benchmarks.md", "Markdown page whose failover table is regenerated")
	audit := fs.Bool("audit", false, "keep kube-apiserver's audit log of Vigil's requests, which dates the report of a failed check (stage \"reported\"); adds a synchronous write to every request")
	logs := fs.String("logs", "", "directory to copy each lab's process logs to (a subdirectory per system) before teardown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *trials < 1 || *trials > 1000 {
		return errors.New("--trials must be 1..1000")
	}
	if *nodes < 3 || *nodes > 50 {
		return errors.New("--nodes must be 3..50")
	}
	var fresh []bench.FailoverResult
	for _, name := range strings.Split(*systems, ",") {
		sys, err := bench.System(strings.TrimSpace(name))
		if err != nil {
			return err
		}
		var results []bench.FailoverResult
		cfg := lab.Config{Nodes: *nodes, WithoutControlPlane: !sys.NeedsControlPlane(), AuditLog: *audit && sys.NeedsControlPlane()}
		benchErr := withLab(cfg, func(ctx context.Context, l *lab.Lab) error {
			if *logs != "" {
				defer func() {
					if err := copyLogs(filepath.Join(l.RunDir, "logs"), filepath.Join(*logs, sys.Name())); err != nil {
						logf("keeping the logs: %v", err)
					}
				}()
			}
			if err := startSystem(l, sys); err != nil {
				return err
			}
			var err error
			results, err = bench.RunFailover(ctx, l, sys, bench.FailoverOptions{
				Trials: *trials, Nodes: *nodes, Scenarios: strings.Split(*scenarios, ","), Logf: logf,
				VIP: fmt.Sprintf("http://%s/", lab.VIPv4(0)),
			})
			return err
		})
		fresh = append(fresh, results...)
		// Record every finished scenario, also when a later one failed.
		if err := bench.RecordResults(*out, *doc, results); err != nil {
			return err
		}
		if benchErr != nil {
			return benchErr
		}
	}
	fmt.Println()
	fmt.Print(bench.Table(fresh))
	fmt.Printf("\nresults in %s and %s\n", *out, *doc)
	return nil
}

// startSystem starts a benchmarked system on lab l, first pinning the members' neighbour
// entries where the lab's full mesh would overflow the machine's neighbour table.
func startSystem(l *lab.Lab, sys bench.FailoverSystem) error {
	if lab.NeighbourTableFull(len(l.Nodes)) {
		if err := l.PinNeighbours(); err != nil {
			return err
		}
	}
	return sys.Start(l)
}

// benchAnnounce measures how soon a client's neighbour entry follows a VIP that moved,
// with Vigil's announcements, and (as the baseline) without any.
func benchAnnounce(fs *flag.FlagSet, args []string) error {
	moves := fs.Int("moves", 20, "moves per address family")
	baseline := fs.Bool("baseline", true, "also measure one move per family without announcements (up to 90 s each)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return withLab(lab.Config{Nodes: 2, WithoutControlPlane: true}, func(ctx context.Context, l *lab.Lab) error {
		return bench.Announce(ctx, l, *moves, *baseline, os.Stdout)
	})
}

// benchProbes measures the cost of the agent's probes: a process in a lab node runs
// VIPS × 3 checks (ICMP to the gateway, TCP and HTTP to the node's service) every second,
// like an agent, and reports its CPU, memory, goroutines and file descriptors.
func benchProbes(fs *flag.FlagSet, args []string) error {
	var o bench.ProbesOptions
	fs.IntVar(&o.VIPs, "vips", 100, "VIPs, each with an ICMP, a TCP and an HTTP check at 1 s")
	fs.DurationVar(&o.Duration, "for", 60*time.Second, "measurement time after a 5 s warm-up (at most 10m)")
	fs.StringVar(&o.Checks, "checks", "icmp,tcp,http", "check kinds per VIP")
	fs.BoolVar(&o.Distinct, "distinct", false, "give every VIP its own targets (127.0.0.x), so that no probe is shared")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.VIPs < 1 || o.VIPs > 1000 || o.Duration <= 0 || o.Duration > 10*time.Minute {
		return errors.New("--vips 1..1000 and --for up to 10m")
	}
	return withLab(lab.Config{Nodes: 1, WithoutControlPlane: true}, func(ctx context.Context, l *lab.Lab) error {
		return bench.Probes(ctx, l, o, os.Stdout)
	})
}
