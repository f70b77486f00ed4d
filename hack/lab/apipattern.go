package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"time"

	"vigil.dev/vigil/test/bench"
	"vigil.dev/vigil/test/lab"
)

// apiPattern shows the agents' requests to the API server around an API outage, from
// kube-apiserver's audit log: in steady state, and right after the API server returns.
func apiPattern(fs *flag.FlagSet, args []string) error {
	o := bench.APIPatternOptions{Bucket: 100 * time.Millisecond, Logf: logf}
	fs.StringVar(&o.Bin, "vigil", "", "vigil binary for the controller and the agents (default: built from this tree)")
	nodes := fs.Int("nodes", 10, "nodes, each with an agent")
	fs.IntVar(&o.VIPs, "vips", 3, "VirtualIPs")
	fs.StringVar(&o.Fault, "fault", bench.FaultStop, "API outage: stop (SIGSTOP, then SIGCONT) or kill (SIGKILL, then a new kube-apiserver)")
	fs.DurationVar(&o.Outage, "outage", 20*time.Second, "how long kube-apiserver is away")
	fs.DurationVar(&o.Stagger, "stagger", 10*time.Second, "agents start at random times spread over this long (as a DaemonSet's pods do; 0: all at once)")
	fs.DurationVar(&o.Settle, "settle", 15*time.Second, "time given to Vigil after its VIPs are held, before the steady window")
	fs.DurationVar(&o.Steady, "steady", 20*time.Second, "window measured before the outage")
	fs.DurationVar(&o.After, "after", 10*time.Second, "window measured after kube-apiserver answers /readyz again")
	fs.StringVar(&o.AuditCopy, "audit-out", "", "copy kube-apiserver's audit log there (the lab's run directory is removed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *nodes < 2 || *nodes > 20 || o.VIPs < 1 || o.VIPs > 20 {
		return errors.New("--nodes 2..20 and --vips 1..20")
	}
	for _, d := range []time.Duration{o.Outage, o.Steady, o.After} {
		if d < time.Second || d > 2*time.Minute {
			return errors.New("--outage, --steady and --after from 1s to 2m")
		}
	}
	if o.Settle < 0 || o.Settle > 2*time.Minute || o.Stagger < 0 || o.Stagger > time.Minute {
		return errors.New("--settle up to 2m, --stagger up to 1m")
	}
	return withLab(lab.Config{Nodes: *nodes, AuditLog: true}, func(ctx context.Context, l *lab.Lab) error {
		return bench.APIPattern(ctx, l, o, os.Stdout)
	})
}
