package lab

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// agentRestartDelay is how long after an agent exits by itself the keeper starts it
// again: the lab restarts the controller after the same delay.
const agentRestartDelay = time.Second

// AgentExit is an agent that exited without a fault killing it, and was restarted.
type AgentExit struct {
	Node string
	At   time.Time
	Why  string // the last line it logged
}

// agentKeeper restarts an agent that exits by itself, as the kubelet restarts a
// DaemonSet's pod: agentRestartDelay after it exits. A fault that stops an agent on
// purpose holds its node until the fault's undo releases it (and starts it at once).
type agentKeeper struct {
	l     *Lab
	vigil string
	args  []string
	logf  func(string, ...any)

	mu     sync.Mutex
	held   map[string]bool
	downAt map[string]time.Time
	exits  []AgentExit
	stop   chan struct{}
	done   chan struct{}
}

// keepAgents starts an agent on every node and keeps them running.
func (l *Lab) keepAgents(vigil string, args []string, logf func(string, ...any)) (*agentKeeper, error) {
	k := &agentKeeper{l: l, vigil: vigil, args: args, logf: logf, held: map[string]bool{}, downAt: map[string]time.Time{},
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, n := range l.Nodes {
		if _, err := l.StartAgent(vigil, n.Name, args...); err != nil {
			return nil, err
		}
	}
	go k.run()
	return k, nil
}

func (k *agentKeeper) run() {
	defer close(k.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
		}
		for _, n := range k.l.Nodes {
			k.check(n.Name)
		}
	}
}

// check notices an agent that exited by itself and restarts it after agentRestartDelay.
func (k *agentKeeper) check(node string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.l.Process(node + "/vigil-agent")
	if k.held[node] || (ok && p.Running()) {
		delete(k.downAt, node)
		return
	}
	down, seen := k.downAt[node]
	if !seen {
		k.downAt[node] = time.Now()
		return
	}
	if time.Since(down) < agentRestartDelay {
		return
	}
	why := "never started"
	if ok {
		why = lastLine(p.Log(), 300)
	}
	k.exits = append(k.exits, AgentExit{Node: node, At: down, Why: why})
	k.logf("chaos: the agent on %s exited by itself (%s): restarting it", node, why)
	if _, err := k.l.StartAgent(k.vigil, node, k.args...); err != nil {
		k.logf("chaos: restarting the agent on %s: %v", node, err)
	}
	delete(k.downAt, node)
}

// hold keeps the keeper from restarting the node's agent (a fault stops it on purpose).
func (k *agentKeeper) hold(node string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.held[node] = true
}

// release starts the node's agent again, as the DaemonSet would, and keeps it running.
func (k *agentKeeper) release(node string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.held, node)
	if p, ok := k.l.Process(node + "/vigil-agent"); ok && p.Running() {
		return nil
	}
	_, err := k.l.StartAgent(k.vigil, node, k.args...)
	return err
}

// Stop stops restarting agents and returns the exits it saw.
func (k *agentKeeper) Stop() []AgentExit {
	select {
	case <-k.stop:
	default:
		close(k.stop)
	}
	<-k.done
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.exits
}

// lastLine is the last non-empty line of s, at most n bytes of it.
func lastLine(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	line := lines[len(lines)-1]
	if len(line) > n {
		line = line[:n] + fmt.Sprintf("... (%d bytes)", len(line))
	}
	return line
}
