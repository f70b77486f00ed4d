package lab

import (
	"context"
	"os"
	"path/filepath"
	"testing"
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
