package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
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
	"vigil.dev/vigil/test/bench"
	"vigil.dev/vigil/test/lab"
)

// probeLoad is the process bench.Probes measures (make bench-probes), run inside a lab
// node: Vigil's probe manager with --vips VIPs × --checks every second, as an agent runs
// them. It prints a bench.ProbeUsage line after a 5 s warm-up and one at the end.
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
	for i := range *vips {
		checks, err := probeChecks(i, *kinds, *distinct)
		if err != nil {
			return err
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

// probeChecks are the checks of the i-th VIP, of the comma-separated kinds: the gateway
// and the node's service as targets, or with distinct, a loopback address of its own.
func probeChecks(i int, kinds string, distinct bool) ([]vigilv1.HealthCheck, error) {
	interval := metav1.Duration{Duration: time.Second}
	icmpTarget, host := vigilv1.ICMPTargetGateway, "127.0.0.1"
	if distinct {
		host = fmt.Sprintf("127.0.%d.%d", i/250, i%250+1)
		icmpTarget = host
	}
	all := map[string]vigilv1.HealthCheck{
		"icmp": {Name: "icmp", ICMP: &vigilv1.ICMPCheck{Target: icmpTarget}, Interval: interval, FailureThreshold: 3, SuccessThreshold: 1},
		"tcp":  {Name: "tcp", TCP: &vigilv1.TCPCheck{Host: host, Port: lab.HTTPPort}, Interval: interval, FailureThreshold: 3, SuccessThreshold: 1},
		"http": {Name: "http", HTTP: &vigilv1.HTTPCheck{Host: host, Port: lab.HTTPPort, Path: "/"}, Interval: interval, FailureThreshold: 3, SuccessThreshold: 1},
	}
	var checks []vigilv1.HealthCheck
	for _, k := range strings.Split(kinds, ",") {
		c, ok := all[k]
		if !ok {
			return nil, fmt.Errorf("unknown check kind %q (want icmp, tcp, http)", k)
		}
		checks = append(checks, c)
	}
	return checks, nil
}

// measure reads this process's own figures from the kernel.
func measure(at string, t0 time.Time, probes, failed int64) bench.ProbeUsage {
	u := bench.ProbeUsage{At: at, Wall: time.Since(t0).Seconds(), Goroutines: runtime.NumGoroutine(), Probes: probes, Failed: failed}
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
