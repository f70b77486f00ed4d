package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"vigil.dev/vigil/test/bench"
	"vigil.dev/vigil/test/lab"
)

// benchStarvation starves every node of a 3-node lab of CPU with busy loops, no fault at
// all, a lab per system, and counts what moved the VIP and how long the client got no
// answer: docs/bench/starvation.json and the table in docs/benchmarks.md.
func benchStarvation(fs *flag.FlagSet, args []string) error {
	burners := fs.String("burners", "2,8,64", "comma-separated busy loops per node, a round each (1..64)")
	systems := fs.String("systems", "vigil,keepalived-tuned", "comma-separated systems (those of bench-failover)")
	o := bench.StarvationOptions{Logf: logf, VIP: fmt.Sprintf("http://%s/", lab.VIPv4(0))}
	fs.DurationVar(&o.Duration, "for", time.Minute, "how long the burners run in each round (1s..10m)")
	fs.DurationVar(&o.Recover, "recover", 10*time.Second, "time after the burners stop that still counts (0..2m)")
	out := fs.String("out", "docs/bench/starvation.json", "JSON results")
	doc := fs.String("doc", "docs/benchmarks.md", "Markdown page whose starvation table is regenerated")
	logs := fs.String("logs", "", "directory to copy each lab's process logs to (a subdirectory per system) before teardown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Duration < time.Second || o.Duration > 10*time.Minute || o.Recover < 0 || o.Recover > 2*time.Minute {
		return errors.New("--for 1s..10m and --recover 0..2m")
	}
	for _, s := range strings.Split(*burners, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 64 {
			return fmt.Errorf("--burners: %q is not 1..64", s)
		}
		o.Burners = append(o.Burners, n)
	}
	rep := bench.StarvationReport{Date: time.Now().UTC().Format(time.DateOnly), Machine: lab.Machine(), Nodes: 3,
		DurationS: o.Duration.Seconds(), RecoverS: o.Recover.Seconds()}
	var runErr error
	for _, name := range strings.Split(*systems, ",") {
		sys, err := bench.System(strings.TrimSpace(name))
		if err != nil {
			return err
		}
		runErr = withLab(lab.Config{Nodes: rep.Nodes, WithoutControlPlane: !sys.NeedsControlPlane()}, func(ctx context.Context, l *lab.Lab) error {
			if *logs != "" {
				defer func() {
					if err := copyLogs(filepath.Join(l.RunDir, "logs"), filepath.Join(*logs, sys.Name())); err != nil {
						logf("keeping the logs: %v", err)
					}
				}()
			}
			rows, err := bench.RunStarvation(ctx, l, sys, o)
			rep.Rows = append(rep.Rows, rows...)
			return err
		})
		if runErr != nil {
			break
		}
	}
	// Record every finished round, also when a later one failed.
	if len(rep.Rows) > 0 {
		if err := bench.WriteJSON(*out, rep); err != nil {
			return errors.Join(runErr, err)
		}
		table := bench.StarvationTable(rep)
		if err := bench.ReplaceSection(*doc, bench.StarvationTableStart, bench.StarvationTableEnd, table); err != nil {
			return errors.Join(runErr, err)
		}
		fmt.Print("\n" + table)
		fmt.Printf("\nresults in %s and %s\n", *out, *doc)
	}
	return runErr
}
