package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"vigil.dev/vigil/agent/probe"
	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/test/lab"
)

// benchProbes measures the cost of the agent's probes: a process in a lab node runs
// VIPS × 3 checks (ICMP to the gateway, TCP and HTTP to the node's service) every second,
// like an agent, and reports its CPU, memory, goroutines and file descriptors.
func benchProbes(fs *flag.FlagSet, args []string) error {
	vips := fs.Int("vips", 100, "VIPs, each with an ICMP, a TCP and an HTTP check at 1 s")
	d := fs.Duration("for", 60*time.Second, "measurement time after a 5 s warm-up (at most 10m)")
	kinds := fs.String("checks", "icmp,tcp,http", "check kinds per VIP")
	distinct := fs.Bool("distinct", false, "give every VIP its own targets (127.0.0.x), so that no probe is shared")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *vips < 1 || *vips > 1000 || *d <= 0 || *d > 10*time.Minute {
		return fmt.Errorf("--vips 1..1000 and --for up to 10m")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := lab.Up(ctx, lab.Config{Nodes: 1, WithoutControlPlane: true, HelperBin: self, Logf: logf})
	if err != nil {
		return err
	}
	defer func() { _ = l.Down() }()
	p, err := l.StartProcess("node-a", "probe-load", self, "probe-load", "--vips", strconv.Itoa(*vips), "--for", d.String(), "--checks", *kinds, fmt.Sprintf("--distinct=%v", *distinct))
	if err != nil {
		return err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if p.Err() != nil {
		return fmt.Errorf("probe-load: %w\n%s", p.Err(), p.Log())
	}
	var start, end usage
	for _, line := range strings.Split(p.Log(), "\n") {
		var u usage
		if json.Unmarshal([]byte(line), &u) == nil && u.At != "" {
			if u.At == "start" {
				start = u
			} else {
				end = u
			}
		}
	}
	window := end.Wall - start.Wall
	cpu := (end.CPU - start.CPU) / window * 100
	targets := "the same targets for every VIP (icmp to the gateway, tcp and http to the node's service): shared probes"
	if *distinct {
		targets = "distinct targets per VIP (127.0.0.x): no probe shared"
	}
	fmt.Printf("\n%d VIPs x checks %s every 1 s, %s; one process, %.0f s measured\n\n", *vips, *kinds, targets, window)
	fmt.Println("| | start | end | goal |")
	fmt.Println("|---|---:|---:|---|")
	fmt.Printf("| CPU (%% of one core) | | %.2f %% | <= 1 %% |\n", cpu)
	fmt.Printf("| RSS | %.1f MiB | %.1f MiB | no growth |\n", start.RSSMiB, end.RSSMiB)
	fmt.Printf("| goroutines | %d | %d | no growth |\n", start.Goroutines, end.Goroutines)
	fmt.Printf("| open file descriptors | %d | %d | no growth |\n", start.FDs, end.FDs)
	fmt.Printf("| probes run / failed (whole run) | | %d / %d | one per check per second, none failed |\n", end.Probes, end.Failed)
	return nil
}

type usage struct {
	At         string  `json:"at"`
	Wall       float64 `json:"wall"`
	CPU        float64 `json:"cpu"`
	RSSMiB     float64 `json:"rssMiB"`
	Goroutines int     `json:"goroutines"`
	FDs        int     `json:"fds"`
	Probes     int64   `json:"probes"`
	Failed     int64   `json:"failed"`
}

func measure(at string, t0 time.Time, probes, failed int64) usage {
	u := usage{At: at, Wall: time.Since(t0).Seconds(), Goroutines: runtime.NumGoroutine(), Probes: probes, Failed: failed}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.CPU = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				u.RSSMiB = kb / 1024
			}
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		u.FDs = len(fds)
	}
	return u
}

// probeLoad is the measured process (run inside a lab node).
func probeLoad(fs *flag.FlagSet, args []string) error {
	vips := fs.Int("vips", 100, "VIPs")
	d := fs.Duration("for", time.Minute, "measurement time")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured window here")
	kinds := fs.String("checks", "icmp,tcp,http", "check kinds per VIP")
	distinct := fs.Bool("distinct", false, "distinct targets per VIP")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t0 := time.Now()
	gw, err := probe.NetlinkGateway(netns.None())
	if err != nil {
		return err
	}
	m := probe.NewManager(probe.Env{NS: netns.None(), Gateway: gw}, logr.Discard(), func(string, probe.Health) {})
	interval := metav1.Duration{Duration: time.Second}
	for i := range *vips {
		icmpTarget, host := vigilv1.ICMPTargetGateway, "127.0.0.1"
		if *distinct {
			host = fmt.Sprintf("127.0.%d.%d", i/250, i%250+1)
			icmpTarget = host
		}
		all := map[string]vigilv1.HealthCheck{
			"icmp": {Name: "icmp", ICMP: &vigilv1.ICMPCheck{Target: icmpTarget}, Interval: interval, FailureThreshold: 3, SuccessThreshold: 1},
			"tcp":  {Name: "tcp", TCP: &vigilv1.TCPCheck{Host: host, Port: lab.HTTPPort}, Interval: interval, FailureThreshold: 3, SuccessThreshold: 1},
			"http": {Name: "http", HTTP: &vigilv1.HTTPCheck{Host: host, Port: lab.HTTPPort, Path: "/"}, Interval: interval, FailureThreshold: 3, SuccessThreshold: 1},
		}
		var checks []vigilv1.HealthCheck
		for _, k := range strings.Split(*kinds, ",") {
			c, ok := all[k]
			if !ok {
				return fmt.Errorf("unknown check kind %q (want icmp, tcp, http)", k)
			}
			checks = append(checks, c)
		}
		vip := netip.AddrFrom4([4]byte{198, 18, 1 + byte(i/250), byte(i%250 + 1)})
		m.Set(vip.String(), probe.Target{VIP: vip, Interface: lab.NodeInterface}, checks)
	}
	time.Sleep(5 * time.Second) // warm-up: every check has started
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(measure("start", t0, 0, 0)); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	time.Sleep(*d)
	run, failed := m.Stats()
	end := measure("end", t0, int64(run), int64(failed))
	m.Stop()
	return enc.Encode(end)
}
