// Package bench measures Vigil in the lab (package test/lab) against baselines: the
// failover benchmark (Vigil, keepalived default and tuned) and the docs table it writes,
// how soon a client follows a moved VIP, and what the agent's health probes cost. hack/lab's
// bench-* commands run it; docs/benchmarks.md shows the figures.
package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"vigil.dev/vigil/test/lab"
)

// FailoverSystem is a VIP failover implementation the benchmark can drive in the lab.
type FailoverSystem interface {
	Name() string
	NeedsControlPlane() bool
	// Start starts the system on every node and makes it serve the VIP.
	Start(l *lab.Lab) error
	// StartNode (re)starts the system's processes on one node.
	StartNode(l *lab.Lab, node string) error
	// StopNode stops the system on one node gracefully (a planned move).
	StopNode(l *lab.Lab, node string) error
	// Settle is how long the VIP must have answered from one node before a fault, so that
	// a node restored after the previous trial has rejoined (and any move back is over).
	Settle() time.Duration
}

// Systems names every system the benchmark knows, in the order of its runs.
var Systems = []string{"vigil", "keepalived-default", "keepalived-tuned"}

// ExtraSystems are systems the benchmark knows but does not run unless asked: vigil-fast
// probes every 100 ms with fall 3, rise 1 (keepalived-tuned's check).
var ExtraSystems = []string{"vigil-fast"}

// System returns the named system, serving the lab's first VIP.
func System(name string) (FailoverSystem, error) {
	switch name {
	case "keepalived-default":
		return &Keepalived{VIP: lab.VIPv4(0)}, nil
	case "keepalived-tuned":
		return &Keepalived{Tuned: true, VIP: lab.VIPv4(0)}, nil
	case "vigil":
		return &Vigil{VIP: lab.VIPv4(0)}, nil
	case "vigil-fast":
		return &Vigil{Label: name, VIP: lab.VIPv4(0), CheckInterval: 100 * time.Millisecond, FailureThreshold: 3, SuccessThreshold: 1}, nil
	}
	return nil, fmt.Errorf("unknown system %q (want %s)", name, strings.Join(append(slices.Clone(Systems), ExtraSystems...), ", "))
}
