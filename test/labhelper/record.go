package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"
	"time"

	"vigil.dev/vigil/test/lab"
)

// record is the client's traffic recorder (Lab.StartRecorder). The recording itself is
// lab.RunRecorder: its JSON lines are read back by the lab's Recorder, so writer and
// reader stay in one package.
func record(fs *flag.FlagSet, args []string) error {
	var o lab.RecordOptions
	fs.StringVar(&o.URL, "url", "", "URL to GET")
	fs.DurationVar(&o.Every, "every", 10*time.Millisecond, "interval between requests")
	fs.DurationVar(&o.Timeout, "timeout", time.Second, "per-request timeout")
	fs.DurationVar(&o.Duration, "for", 0, "how long to record")
	out := fs.String("out", "", "file for the JSON lines (default stdout)")
	if err := fs.Parse(args); err != nil {
		return err
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
	return lab.RunRecorder(ctx, w, o)
}
