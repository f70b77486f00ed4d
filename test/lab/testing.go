package lab

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"vigil.dev/vigil/agent/address"
)

// ForTest brings a lab up for a test and tears it down when the test ends; when the test
// failed it first prints the tail of every process log. Without root the test fails with
// one line saying so: lab tests never skip.
func ForTest(t testing.TB, cfg Config) *Lab {
	t.Helper()
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	l, err := Up(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if dir := os.Getenv("VIGIL_LAB_LOGS"); dir != "" {
			keepLogs(t, l, filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")))
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(l.RunDir, "logs", "*.log"))
			for _, f := range logs {
				b, _ := os.ReadFile(f)
				t.Logf("--- %s (last lines)\n%s", filepath.Base(f), tail(string(b), 15))
			}
		}
		if err := l.Down(); err != nil {
			t.Errorf("tearing the lab down: %v", err)
		}
	})
	return l
}

// NamespaceForTest opens member m's network namespace for a test; it is closed when the
// test ends.
func NamespaceForTest(t testing.TB, m *Member) netns.NsHandle {
	t.Helper()
	ns, err := netns.GetFromName(m.NS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	return ns
}

// NetlinkForTest opens Vigil's address manager inside member m's network namespace for a
// test, and returns it with the namespace; both are closed when the test ends.
func NetlinkForTest(t testing.TB, m *Member) (*address.Netlink, netns.NsHandle) {
	t.Helper()
	ns := NamespaceForTest(t, m)
	n, err := address.NewNetlink(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n, ns
}

// keepLogs copies the run's process logs to dir ($VIGIL_LAB_LOGS): a passing test's
// timings can be read after the lab is gone.
func keepLogs(t testing.TB, l *Lab, dir string) {
	logs, _ := filepath.Glob(filepath.Join(l.RunDir, "logs", "*.log"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("keeping logs: %v", err)
		return
	}
	for _, f := range logs {
		if b, err := os.ReadFile(f); err == nil {
			_ = os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644)
		}
	}
	t.Logf("lab logs kept in %s", dir)
}
