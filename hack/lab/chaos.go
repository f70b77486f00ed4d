package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"vigil.dev/vigil/test/lab"
)

// chaos is `make chaos`: random real faults in a 4-node lab running Vigil, the invariants
// checked all along, a JSON report and a summary.
func chaos(fs *flag.FlagSet, args []string) error {
	d := fs.Duration("for", 10*time.Minute, "how long faults are injected (at most 45m); Vigil's start and the final settle come on top")
	seed := fs.Uint64("seed", 0, "seed of the fault schedule; 0 draws one from the clock (the report names it, to run the same schedule again)")
	faults := fs.String("faults", "", "comma-separated fault kinds to inject (default: every kind)")
	vigil := fs.String("vigil", "", "the vigil binary (default: built from this tree)")
	out := fs.String("out", "docs/bench/chaos.json", "where the JSON report goes")
	logs := fs.String("logs", "", "directory to copy the lab's process logs to before teardown (default: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	kinds, err := lab.ParseFaultKinds(*faults)
	if err != nil {
		return err
	}
	logf("chaos: seed %d, faults for %v", *seed, *d)
	var report lab.ChaosReport
	err = withLab(lab.Config{Nodes: 4}, func(ctx context.Context, l *lab.Lab) error {
		bin := *vigil
		if bin == "" {
			var err error
			if bin, err = l.BuildVigil(); err != nil {
				return err
			}
		}
		var runErr error
		report, runErr = lab.RunChaos(ctx, l, lab.ChaosOptions{
			Vigil: bin, Duration: *d, Seed: *seed, Kinds: kinds, AgentArgs: []string{"--zap-log-level=debug"}, Logf: logf,
		})
		if *logs != "" {
			runErr = errors.Join(runErr, copyLogs(filepath.Join(l.RunDir, "logs"), *logs))
		}
		return runErr
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	if err := lab.WriteChaosReport(*out, report); err != nil {
		return err
	}
	fmt.Print("\n" + report.Summary())
	fmt.Printf("report in %s\n", *out)
	if report.Violations.Count > 0 || len(report.FaultErrors) > 0 {
		return fmt.Errorf("chaos: %d invariant violations, %d fault errors (seed %d)", report.Violations.Count, len(report.FaultErrors), *seed)
	}
	return nil
}

// copyLogs copies every file of the lab's log directory into dir.
func copyLogs(from, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		errs = append(errs, copyFile(filepath.Join(from, e.Name()), filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer func() { _ = src.Close() }()
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	return errors.Join(err, dst.Close())
}
