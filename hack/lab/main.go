// Command lab drives Vigil's test lab (package test/lab) from a shell:
//
//	lab up [--nodes N] [--no-control-plane] [--second-network]
//	                                           build a lab and leave it running
//	lab status                                 list lab runs
//	lab exec PREFIX MEMBER -- CMD...           run a command in a node, "client" or "cp"
//	lab kubectl PREFIX -- ARGS...              kubectl against the lab's API server
//	lab down PREFIX | --all                    tear a run down / remove crashed runs
//	lab bench-failover [flags]                 the failover benchmark
//	lab bench-announce [--moves N]             neighbour-cache update after a VIP moves
//	lab bench-probes [--vips N] [--for D]      cost of the agent's health probes
//	lab demo                                   what `make demo` shows
//	lab chaos [--for D] [--seed N] [flags]     random real faults, invariants checked (make chaos)
//
// Its hidden commands are the processes the lab runs inside namespaces: serve-http (each
// node's service), record (the client's traffic recorder), burn (CPU starvation) and
// memberlist-outsider (a memberlist member with another key, trying to join Vigil's).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"vigil.dev/vigil/test/lab"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "lab: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: lab up|status|exec|kubectl|down|bench-failover (see hack/lab/main.go)")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("lab "+cmd, flag.ContinueOnError)
	switch cmd {
	case "up":
		runRoot := fs.String("run-root", lab.DefaultRunRoot, "directory for the run's logs and state")
		nodes := fs.Int("nodes", 3, "number of nodes")
		noCP := fs.Bool("no-control-plane", false, "do not start etcd and kube-apiserver")
		second := fs.Bool("second-network", false, "add a second bridge and an eth1 in every node and the client (198.19.0.0/24, fd00:199:19::/64)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		l, err := lab.Up(context.Background(), lab.Config{
			Nodes: *nodes, WithoutControlPlane: *noCP, SecondNetwork: *second, RunRoot: *runRoot, Detached: true,
			HelperBin: self, Logf: logf,
		})
		if err != nil {
			return err
		}
		fmt.Print(l)
		if l.Kubeconfig != "" {
			fmt.Printf("kubeconfig: %s (reachable from lab namespaces; try: lab kubectl %s -- get nodes)\n", l.Kubeconfig, l.Prefix)
		}
		fmt.Printf("tear down with: lab down %s\n", l.Prefix)
		return nil
	case "status":
		if err := fs.Parse(args); err != nil {
			return err
		}
		runs, err := lab.Runs()
		if err != nil {
			return err
		}
		if len(runs) == 0 {
			fmt.Println("no lab runs")
		}
		prefixes := make([]string, 0, len(runs))
		for p := range runs {
			prefixes = append(prefixes, p)
		}
		sort.Strings(prefixes)
		for _, p := range prefixes {
			fmt.Println(lab.DescribeRun(runs[p]))
		}
		return nil
	case "exec", "kubectl":
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		need := map[string]int{"exec": 2, "kubectl": 1}[cmd]
		if len(rest) < need+1 {
			return errors.New("usage: lab exec PREFIX MEMBER -- CMD | lab kubectl PREFIX -- ARGS")
		}
		prefix := rest[0]
		cmdArgs := rest[need:]
		if len(cmdArgs) > 0 && cmdArgs[0] == "--" {
			cmdArgs = cmdArgs[1:]
		}
		var argv []string
		if cmd == "exec" {
			argv = append([]string{"netns", "exec", prefix + "-" + rest[1]}, cmdArgs...)
		} else {
			assets := os.Getenv("KUBEBUILDER_ASSETS")
			if assets == "" {
				return errors.New("set KUBEBUILDER_ASSETS (make -s assets-path) to find kubectl")
			}
			runs, err := lab.Runs()
			if err != nil {
				return err
			}
			run, ok := runs[prefix]
			if !ok {
				return fmt.Errorf("no lab run %q (see lab status)", prefix)
			}
			kubeconfig := filepath.Join(run.RunDir, "kubeconfig")
			argv = append([]string{"netns", "exec", prefix + "-cp", filepath.Join(assets, "kubectl"), "--kubeconfig", kubeconfig}, cmdArgs...)
		}
		c := exec.Command("ip", argv...)
		c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
		return c.Run()
	case "down":
		all := fs.Bool("all", false, "remove every lab run whose owner is gone, CLI runs, and orphaned lab namespaces")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *all {
			removed, err := lab.DownAll(true)
			for _, r := range removed {
				fmt.Println("removed", r)
			}
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("usage: lab down PREFIX | lab down --all")
		}
		return lab.DownRun(fs.Arg(0))
	case "bench-failover":
		return benchFailover(fs, args)
	case "demo":
		return demo(fs, args)
	case "chaos":
		return chaos(fs, args)
	case "bench-announce":
		return benchAnnounce(fs, args)
	case "bench-probes":
		return benchProbes(fs, args)
	case "probe-load":
		return probeLoad(fs, args)
	case "serve-http":
		name := fs.String("name", "", "the node name to answer with")
		port := fs.Int("port", lab.HTTPPort, "port")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return lab.ServeNodeName(fmt.Sprintf(":%d", *port), *name)
	case "record":
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
	case "check-tcp":
		addr := fs.String("addr", "", "host:port to connect to")
		timeout := fs.Duration("timeout", time.Second, "connect timeout")
		if err := fs.Parse(args); err != nil {
			return err
		}
		conn, err := net.DialTimeout("tcp", *addr, *timeout)
		if err != nil {
			return err
		}
		return conn.Close()
	case "track-tcp":
		var o lab.TrackOptions
		fs.StringVar(&o.Addr, "addr", "", "host:port to connect to")
		fs.DurationVar(&o.Every, "every", 100*time.Millisecond, "probe interval (also the timeout)")
		fs.IntVar(&o.Fall, "fall", 3, "failures in a row that make it down")
		fs.IntVar(&o.Rise, "rise", 1, "successes in a row that make it up")
		fs.StringVar(&o.File, "file", "", "file to write 0 (up) or 1 (down) to")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return lab.TrackTCP(o)
	case "memberlist-outsider":
		bind, key, join := fs.String("bind", "", "IP to listen on"), fs.String("key", "", "base64 gossip key; empty: none"), fs.String("join", "", "host:port of a member")
		stay := fs.Duration("stay", 3*time.Second, "how long to stay after trying to join")
		if err := fs.Parse(args); err != nil {
			return err
		}
		o, err := lab.ParseOutsiderFlags(*bind, *key, *join, min(*stay, time.Minute))
		if err != nil {
			return err
		}
		return lab.RunOutsider(os.Stdout, o)
	case "burn":
		d := fs.Duration("for", 10*time.Second, "how long to burn one core (at most 10m)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return lab.Burn(min(*d, 10*time.Minute))
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// withLab brings a lab up with this binary as its helper, runs fn with a context that
// SIGINT and SIGTERM cancel, and tears the lab down whatever happened (the lab also tears
// itself down on those signals).
func withLab(cfg lab.Config, fn func(context.Context, *lab.Lab) error) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.HelperBin, cfg.Logf = self, logf
	l, err := lab.Up(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := l.Down(); err != nil {
			logf("tearing the lab down: %v", err)
		}
	}()
	return fn(ctx, l)
}
