package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a command the lab started inside one of its namespaces.
type Process struct {
	Name    string // unique within the lab, e.g. "node-a/http"
	NS      string // network namespace it runs in
	LogPath string // its stdout and stderr

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// PID is the process ID (ip netns exec execs the command, so it is the command's own).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit error once it is done.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Signal sends sig to the process (SIGSTOP/SIGCONT for outages, SIGKILL for crashes).
func (p *Process) Signal(sig syscall.Signal) error {
	if !p.Running() {
		return fmt.Errorf("%s has already exited", p.Name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signalling %s (pid %d): %w", p.Name, p.PID(), err)
	}
	return nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() error {
	if !p.Running() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot die until continued
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	return p.Wait(10 * time.Second)
}

// Stop asks the process to exit with SIGTERM and kills it after grace.
func (p *Process) Stop(grace time.Duration) error {
	if !p.Running() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if p.Wait(grace) == nil {
		return nil
	}
	return p.Kill()
}

// Wait waits up to timeout for the process to exit.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) still running after %v", p.Name, p.PID(), timeout)
	}
}

// Log returns what the process has written so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// LogTail returns the last lines of the process's log: enough to say why it failed.
func (p *Process) LogTail(lines int) string { return tail(p.Log(), lines) }

// startProcess runs argv inside network namespace ns, logging to the run directory.
func (l *Lab) startProcess(ns, name string, argv ...string) (*Process, error) {
	return l.startProcessEnv(ns, name, nil, argv...)
}

// startProcessEnv is startProcess with env ("KEY=value") added to the lab's environment.
func (l *Lab) startProcessEnv(ns, name string, env []string, argv ...string) (*Process, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return nil, fmt.Errorf("lab %s is being torn down", l.Prefix)
	}
	if old, ok := l.procs[name]; ok && old.Running() {
		return nil, fmt.Errorf("process %s is already running (pid %d)", name, old.PID())
	}
	logPath := filepath.Join(l.RunDir, "logs", strings.ReplaceAll(name, "/", "_")+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log of %s: %w", name, err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	// Its own process group keeps a terminal's Ctrl-C away from it: the lab tears down in
	// order. Unless the lab is detached (CLI `up`), the kernel kills the process if the lab
	// process dies, so a crashed test leaves nothing running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !l.detached {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, strings.Join(argv, " "), err)
	}
	p := &Process{Name: name, NS: ns, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		_ = logFile.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	l.procs[name] = p
	return p, nil
}

// Process returns the lab's process with that name, if it was started.
func (l *Lab) Process(name string) (*Process, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.procs[name]
	return p, ok
}

// killNamespace kills every process inside network namespace ns. Everything there was
// started by this lab: the namespace is the lab's own — save this process itself, which
// shows in it while its main thread opens a socket there (DialerIn, netlink handles lock
// a goroutine to a thread and switch the thread's namespace for a moment, and Go may run
// that goroutine on the main thread, whose namespace is the one listed). A test binary
// was once SIGKILLed in the middle of a lab test; this is how the lab could have done it.
func killNamespace(ns string) error {
	var errs []error
	self := os.Getpid()
	for attempt := 0; attempt < 50; attempt++ {
		pids, err := nsPIDs(ns)
		pids = slices.DeleteFunc(pids, func(pid int) bool { return pid == self })
		if err != nil || len(pids) == 0 {
			return err
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGCONT)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("killing pid %d in %s: %w", pid, ns, err))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	errs = append(errs, fmt.Errorf("processes still running in %s after kill", ns))
	return errors.Join(errs...)
}
