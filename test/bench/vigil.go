package bench

import (
	"context"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
	"vigil.dev/vigil/test/lab"
)

// Vigil runs Vigil in the lab for the failover benchmark: the controller in the control
// plane, an agent on every node, the chart's settings, and one VirtualIP with a TCP check
// of the node's HTTP service. By default the check takes the API's defaults (interval 1 s,
// failureThreshold 3, successThreshold 1: the same as keepalived-default).
type Vigil struct {
	VIP netip.Addr
	// Bin is the vigil binary; built from source when empty.
	Bin string
	// Label is the system's name in tables; "vigil" when empty.
	Label string
	// CheckInterval, FailureThreshold and SuccessThreshold set the TCP check's timing;
	// zero leaves the API's default.
	CheckInterval                      time.Duration
	FailureThreshold, SuccessThreshold int32
	// ControllerArgs and AgentArgs are added after the chart's arguments (a flag given
	// twice takes the last value).
	ControllerArgs, AgentArgs []string
}

// Name is the system's name in benchmark tables.
func (v *Vigil) Name() string {
	if v.Label != "" {
		return v.Label
	}
	return "vigil"
}

// NeedsControlPlane is true: Vigil is driven by the Kubernetes API.
func (v *Vigil) NeedsControlPlane() bool { return true }

// Settle covers a restored agent's start (cache sync, first verdict, memberlist join).
func (v *Vigil) Settle() time.Duration { return 2 * time.Second }

// Start runs the controller and the agents and applies the VirtualIP.
func (v *Vigil) Start(l *lab.Lab) error {
	if v.Bin == "" {
		bin, err := l.BuildVigil()
		if err != nil {
			return err
		}
		v.Bin = bin
	}
	if _, err := l.StartController(v.Bin, v.ControllerArgs...); err != nil {
		return err
	}
	for _, n := range l.Nodes {
		if err := v.StartNode(l, n.Name); err != nil {
			return err
		}
	}
	// The agents start one after another: a larger lab takes longer.
	if err := l.WaitForVigil(30*time.Second + time.Duration(len(l.Nodes))*time.Second); err != nil {
		return err
	}
	c, err := l.KubeClient()
	if err != nil {
		return err
	}
	check := vigilv1.HealthCheck{Name: "web", TCP: &vigilv1.TCPCheck{Host: "127.0.0.1", Port: lab.HTTPPort},
		Interval: metav1.Duration{Duration: v.CheckInterval}, FailureThreshold: v.FailureThreshold, SuccessThreshold: v.SuccessThreshold}
	vip := &vigilv1.VirtualIP{
		ObjectMeta: metav1.ObjectMeta{Name: benchVIPName},
		Spec:       vigilv1.VirtualIPSpec{Address: v.VIP.String(), HealthChecks: []vigilv1.HealthCheck{check}},
	}
	if err := c.Create(context.Background(), vip); err != nil {
		return fmt.Errorf("creating the benchmark VirtualIP: %w", err)
	}
	return nil
}

// StartNode (re)starts the node's agent.
func (v *Vigil) StartNode(l *lab.Lab, node string) error {
	_, err := l.StartAgent(v.Bin, node, v.AgentArgs...)
	return err
}

// StopNode stops the node's agent with SIGTERM: it hands its VIPs over, then exits.
func (v *Vigil) StopNode(l *lab.Lab, node string) error {
	p, ok := l.Process(node + "/vigil-agent")
	if !ok {
		return fmt.Errorf("no agent on %s", node)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	return p.Wait(20 * time.Second)
}

// benchVIPName is the name of the benchmark's VirtualIP.
const benchVIPName = "bench"

// Stages dates a failover's stages from the controller's and the agents' logs, and the
// owner's report of a failed check from the API server's audit log when the lab keeps one.
func (v *Vigil) Stages(l *lab.Lab, t StageTrial) (Stages, error) {
	var lines []logLine
	read := func(process, name string) error {
		p, ok := l.Process(name)
		if !ok {
			return nil
		}
		ls, err := readLogLines(p.LogPath, process, t.Fault)
		lines = append(lines, ls...)
		return err
	}
	if err := read("controller", "cp/vigil-controller"); err != nil {
		return nil, err
	}
	for _, n := range l.Nodes {
		if err := read(n.Name, n.Name+"/vigil-agent"); err != nil {
			return nil, err
		}
	}
	t.VIP = benchVIPName
	st := traceStages(lines, t)
	// With an audit log (hack/lab bench-failover --audit), the report's arrival too.
	if failed, ok := st[StageCheckFailed]; ok {
		if events, _, err := l.ReadAuditLog(); err == nil {
			if at, ok := reportedStage(events, t.Owner, t.Fault.Add(failed)); ok {
				st[StageReported] = at.Sub(t.Fault)
			}
		}
	}
	return st, nil
}
