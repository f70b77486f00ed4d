package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"vigil.dev/vigil/test/lab"
)

// The client's traffic recorders: each writes the result of every request as a JSON line,
// which the lab reads back.

// record is the client's traffic recorder (Lab.StartRecorder). The recording itself is
// lab.RunRecorder: its JSON lines are read back by the lab's Recorder, so writer and
// reader stay in one package.
func record(fs *flag.FlagSet, args []string) error {
	var o lab.RecordOptions
	fs.StringVar(&o.URL, "url", "", "URL to GET")
	out := requestFlags(fs, &o.Every, &o.Timeout, &o.Duration, "interval between requests", "how long to record")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return writeLines(*out, func(ctx context.Context, w io.Writer) error { return lab.RunRecorder(ctx, w, o) })
}

// sweep is the client's traffic recorder for many VIPs (Lab.StartSweep): lab.RunSweep,
// whose JSON lines the lab's Sweep reads back.
func sweep(fs *flag.FlagSet, args []string) error {
	var o lab.SweepOptions
	targets := fs.String("targets", "", "file with one URL a line")
	fs.BoolVar(&o.UntilOK, "until-ok", false, "ask each target until its first good answer, one request at a time")
	fs.IntVar(&o.Parallel, "parallel", 64, "with --until-ok, the most requests in flight")
	out := requestFlags(fs, &o.Every, &o.Timeout, &o.Duration, "interval between requests to one target", "how long to sweep at most")
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
	return writeLines(*out, func(ctx context.Context, w io.Writer) error { return lab.RunSweep(ctx, w, o) })
}

// requestFlags registers the flags record and sweep share: the interval between requests
// (everyHelp says to what), the per-request timeout, how long to run (forHelp) and the
// file for the JSON lines, which it returns.
func requestFlags(fs *flag.FlagSet, every, timeout, d *time.Duration, everyHelp, forHelp string) (out *string) {
	fs.DurationVar(every, "every", 10*time.Millisecond, everyHelp)
	fs.DurationVar(timeout, "timeout", time.Second, "per-request timeout")
	fs.DurationVar(d, "for", 0, forHelp)
	return fs.String("out", "", "file for the JSON lines (default stdout)")
}

// writeLines runs run, writing to the file out (stdout when empty), until it returns or
// the process is asked to stop (SIGTERM, an interrupt), which cancels its context.
func writeLines(out string, run func(ctx context.Context, w io.Writer) error) error {
	var w io.Writer = os.Stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		w = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return run(ctx, w)
}
