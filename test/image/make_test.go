// Package image_test checks Vigil's container image: the Dockerfile builds vigil with the
// same command as `make build`, and `make image` writes a reproducible multi-arch OCI
// archive whose binary runs. Missing prerequisites (make, the CA bundle) fail, never skip.
package image_test

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"vigil.dev/vigil/test/envtest"
)

// runMake runs make in the repository root and returns its stdout.
func runMake(t *testing.T, args ...string) string {
	t.Helper()
	return runMakeWith(t, nil, args...)
}

// runMakeNiced runs make at a low CPU priority: `make test` runs test packages in
// parallel, and compiling two binaries must not slow down the timing-sensitive ones.
func runMakeNiced(t *testing.T, args ...string) string {
	t.Helper()
	return runMakeWith(t, []string{"nice", "-n", "10"}, args...)
}

// runMakeWith runs make, after the wrapper command if any. The parent make's MAKEFLAGS
// (under `make test`) are dropped: its variables and jobserver are not ours.
func runMakeWith(t *testing.T, wrapper []string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is not installed (apt-get install make): %v", err)
	}
	argv := append(append(wrapper, "make", "--no-print-directory", "-C", envtest.RepoRoot()), args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(withoutMakeEnv(os.Environ()), "LC_ALL=C")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("make %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// withoutMakeEnv drops the variables through which a parent make talks to its children.
func withoutMakeEnv(env []string) []string {
	var kept []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "IMAGE", "IMAGE_DIR", "VERSION", "COMMIT":
			continue
		}
		kept = append(kept, kv)
	}
	return kept
}
