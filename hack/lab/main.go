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
//	lab bench-apply [--vips N]                 VirtualIPs applied one by one: time to the first answer
//	lab bench-scale [--runs 1000x50,300x3]     many VirtualIPs over many real agents
//	lab bench-starvation [--burners 2,8,64]    CPU burners on every node: false failovers, time without holder
//	lab demo                                   what `make demo` shows
//	lab chaos [--for D] [--seed N] [flags]     random real faults, invariants checked (make chaos)
//	lab api-pattern [--vigil BIN] [--fault stop|kill] [flags]
//	                                           the agents' API requests around an API outage
//
// The processes the lab runs inside its namespaces are test/labhelper's: `make lab` builds
// it as bin/labhelper beside bin/lab, where this command finds it; elsewhere (go run) the
// lab builds it from source.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	"vigil.dev/vigil/test/lab"
	"vigil.dev/vigil/test/subcommand"
)

// commands are lab's commands: each parses its flags from fs and runs.
var commands = map[string]subcommand.Command{
	"up":               up,
	"status":           status,
	"exec":             execIn,
	"kubectl":          kubectl,
	"down":             down,
	"bench-failover":   benchFailover,
	"bench-announce":   benchAnnounce,
	"bench-probes":     benchProbes,
	"bench-apply":      benchApply,
	"bench-scale":      benchScale,
	"demo":             demo,
	"chaos":            chaos,
	"api-pattern":      apiPattern,
	"bench-starvation": benchStarvation,
}

func main() { subcommand.Main("lab", commands) }

// up builds a lab and leaves it running (detached) for people to explore.
func up(fs *flag.FlagSet, args []string) error {
	runRoot := fs.String("run-root", lab.DefaultRunRoot, "directory for the run's logs and state")
	nodes := fs.Int("nodes", 3, "number of nodes")
	noCP := fs.Bool("no-control-plane", false, "do not start etcd and kube-apiserver")
	second := fs.Bool("second-network", false, "add a second bridge and an eth1 in every node and the client (198.19.0.0/24, fd00:199:19::/64)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	l, err := lab.Up(context.Background(), lab.Config{
		Nodes: *nodes, WithoutControlPlane: *noCP, SecondNetwork: *second, RunRoot: *runRoot, Detached: true,
		HelperBin: helperBin(), Logf: logf,
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
}

// status lists the registered lab runs.
func status(fs *flag.FlagSet, args []string) error {
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
	slices.Sort(prefixes)
	for _, p := range prefixes {
		fmt.Println(lab.DescribeRun(runs[p]))
	}
	return nil
}

// execIn runs a command in a member's namespace of a run: lab exec PREFIX MEMBER -- CMD.
func execIn(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 3 {
		return errors.New("usage: lab exec PREFIX MEMBER -- CMD")
	}
	prefix, member := fs.Arg(0), fs.Arg(1)
	return ipNetnsExec(prefix+"-"+member, commandArgs(fs.Args()[2:]))
}

// kubectl runs kubectl in a run's control-plane namespace with its admin kubeconfig:
// lab kubectl PREFIX -- ARGS.
func kubectl(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return errors.New("usage: lab kubectl PREFIX -- ARGS")
	}
	prefix := fs.Arg(0)
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
	argv := append([]string{filepath.Join(assets, "kubectl"), "--kubeconfig", filepath.Join(run.RunDir, "kubeconfig")}, commandArgs(fs.Args()[1:])...)
	return ipNetnsExec(prefix+"-cp", argv)
}

// commandArgs drops the "--" that separates lab's arguments from the command's.
func commandArgs(args []string) []string {
	if len(args) > 0 && args[0] == "--" {
		return args[1:]
	}
	return args
}

// ipNetnsExec runs argv in network namespace ns, attached to this terminal.
func ipNetnsExec(ns string, argv []string) error {
	c := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	return c.Run()
}

// down tears one run down, or with --all the leftovers of crashed runs and CLI runs.
func down(fs *flag.FlagSet, args []string) error {
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
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// helperBin is the lab's helper binary: bin/labhelper beside this binary, as `make lab`
// builds them; "" elsewhere (go run), and the lab builds test/labhelper from source.
func helperBin() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	helper := filepath.Join(filepath.Dir(self), "labhelper")
	if _, err := os.Stat(helper); err != nil {
		return ""
	}
	return helper
}

// withLab brings a lab up, runs fn with a context that SIGINT and SIGTERM cancel, and
// tears the lab down whatever happened (the lab also tears itself down on those signals).
// Every command that needs a lab for its own run goes through it; only `up` leaves one.
func withLab(cfg lab.Config, fn func(context.Context, *lab.Lab) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.HelperBin, cfg.Logf = helperBin(), logf
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
