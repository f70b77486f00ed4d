package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"vigil.dev/vigil/test/lab"
)

func say(format string, args ...any) {
	fmt.Printf("\n\033[1m==> "+format+"\033[0m\n", args...)
}

// demo is `make demo`: a 3-node lab with a real API server, Vigil's controller and agents,
// the sample VirtualIPs, the rejection of an invalid one, and a measured failover as a
// client sees it.
func demo(fs *flag.FlagSet, args []string) error {
	vigil := fs.String("vigil", "bin/vigil", "the vigil binary (make build)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	vigilBin, err := filepath.Abs(*vigil)
	if err != nil {
		return err
	}
	if _, err := os.Stat(vigilBin); err != nil {
		return fmt.Errorf("no vigil binary at %s: run make build: %w", vigilBin, err)
	}
	say("bringing up the lab: real etcd + kube-apiserver, 3 nodes, a client, each in its own network namespace")
	return withLab(lab.Config{Nodes: 3}, func(ctx context.Context, l *lab.Lab) error {
		defer say("tearing the lab down")
		fmt.Print(l)
		kubectl := func(args ...string) (string, error) {
			fmt.Printf("$ kubectl %s\n", strings.Join(args, " "))
			out, err := l.Kubectl(args...)
			fmt.Print(out)
			return out, err
		}
		if err := demoInstall(ctx, l, vigilBin, kubectl); err != nil {
			return err
		}
		return demoFailover(l, kubectl)
	})
}

// demoInstall installs Vigil with helm, starts it, applies the samples (and an invalid
// one, which the API server rejects) and waits for every sample to be Ready.
func demoInstall(ctx context.Context, l *lab.Lab, vigilBin string, kubectl func(...string) (string, error)) error {
	say("installing Vigil: helm install vigil charts/vigil --namespace vigil-system")
	inst, err := l.InstallVigil(ctx)
	if err != nil {
		return err
	}
	fmt.Print(inst.Output)

	say("starting the controller (control-plane namespace) and an agent on every node, with the chart's args and ServiceAccount tokens")
	if _, err := l.StartController(vigilBin); err != nil {
		return err
	}
	for _, n := range l.Nodes {
		if _, err := l.StartAgent(vigilBin, n.Name); err != nil {
			return err
		}
	}
	if err := l.WaitForVigil(30 * time.Second); err != nil {
		return err
	}
	if _, err := kubectl("get", "nodes,nodeagents", "-o", "wide"); err != nil {
		return err
	}

	say("applying the sample VirtualIPs")
	if _, err := kubectl("apply", "-f", "config/samples/"); err != nil {
		return err
	}
	say("applying a deliberately invalid VirtualIP: the API server rejects it and says why")
	if _, err := kubectl("apply", "-f", "config/samples/invalid/virtualip_cidr.yaml"); err == nil {
		return errors.New("the invalid sample was accepted")
	}
	say("the controller elects an owner; the owner's agent binds and announces the address")
	if _, err := kubectl("wait", "vip", "--all", "--for=condition=Ready", "--timeout=30s"); err != nil {
		return err
	}
	_, err = kubectl("get", "vip", "-o", "wide")
	return err
}

// demoFailover crashes the node that answers the first VIP while the client sends
// requests, and shows what the client saw.
func demoFailover(l *lab.Lab, kubectl func(...string) (string, error)) error {
	vip := fmt.Sprintf("http://%s/", lab.VIPv4(0))
	say("a client sends a fresh GET to %s every 10 ms; the owner's node crashes (kill -9 of everything on it, link down)", vip)
	rec, err := l.StartRecorder(lab.RecordOptions{URL: vip, Timeout: 300 * time.Millisecond, Duration: time.Minute})
	if err != nil {
		return err
	}
	samples, err := rec.WaitFor(10*time.Second, func(s []lab.Sample) bool { return len(s) >= 100 && s[len(s)-1].OK })
	if err != nil {
		return err
	}
	owner := samples[len(samples)-1].Node
	fault := time.Now()
	if err := l.CrashNode(owner); err != nil {
		return err
	}
	if _, err := rec.WaitFor(15*time.Second, func(s []lab.Sample) bool {
		o := lab.AnalyzeFault(s, fault, owner)
		return o.Recovered && s[len(s)-1].Start.Sub(o.FirstOKAfter) > 500*time.Millisecond
	}); err != nil {
		return err
	}
	samples, err = rec.Stop()
	if err != nil {
		return err
	}
	for _, line := range lab.Stream(samplesAround(samples, fault), 100*time.Millisecond) {
		fmt.Println("  " + line)
	}
	o := lab.AnalyzeFault(samples, fault, owner)
	fmt.Printf("\n\033[1mfailover: %s crashed, %s answered after %v (%d failed requests)\033[0m\n",
		owner, o.NewOwner, o.Duration.Round(time.Millisecond), o.Failed)
	if _, err := kubectl("get", "vip", "-o", "wide"); err != nil {
		return err
	}
	_, _ = kubectl("get", "events", "--field-selector", "involvedObject.kind=VirtualIP")
	return nil
}

// samplesAround keeps the samples from 0.5 s before the fault to 1 s after recovery.
func samplesAround(s []lab.Sample, fault time.Time) []lab.Sample {
	var out []lab.Sample
	for _, x := range s {
		if x.Start.After(fault.Add(-500 * time.Millisecond)) {
			out = append(out, x)
		}
	}
	return out
}
