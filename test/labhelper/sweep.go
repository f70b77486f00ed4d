package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"vigil.dev/vigil/test/lab"
)

// sweep is the client's traffic recorder for many VIPs (Lab.StartSweep): lab.RunSweep,
// whose JSON lines the lab's Sweep reads back.
func sweep(fs *flag.FlagSet, args []string) error {
	var o lab.SweepOptions
	targets := fs.String("targets", "", "file with one URL a line")
	fs.BoolVar(&o.UntilOK, "until-ok", false, "ask each target until its first good answer, one request at a time")
	fs.DurationVar(&o.Every, "every", 10*time.Millisecond, "interval between requests to one target")
	fs.DurationVar(&o.Timeout, "timeout", time.Second, "per-request timeout")
	fs.IntVar(&o.Parallel, "parallel", 64, "with --until-ok, the most requests in flight")
	fs.DurationVar(&o.Duration, "for", 0, "how long to sweep at most")
	out := fs.String("out", "", "file for the JSON lines (default stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *targets == "" {
		return errors.New("--targets is required")
	}
	b, err := os.ReadFile(*targets)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			o.URLs = append(o.URLs, line)
		}
	}
	w := os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		w = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return lab.RunSweep(ctx, w, o)
}
