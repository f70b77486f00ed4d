// Package convert_test checks `vigil convert keepalived` from the outside: the VirtualIPs of
// its golden outputs against a real kube-apiserver, and its command line.
package convert_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"vigil.dev/vigil/test/envtest"
)

// goldenObjects reads every VirtualIP of the converter's golden outputs.
func goldenObjects(t *testing.T) map[string][]*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(envtest.RepoRoot(), "internal", "keepalived", "testdata", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden outputs under internal/keepalived/testdata: %v", err)
	}
	objects := map[string][]*unstructured.Unstructured{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(src), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("decoding %s: %v", f, err)
			}
			if len(u.Object) > 0 {
				objects[filepath.Base(f)] = append(objects[filepath.Base(f)], u)
			}
		}
	}
	return objects
}

// Every VirtualIP the converter writes in its golden outputs is accepted by a real
// kube-apiserver with Vigil's CRD: the OpenAPI schema and every CEL rule (server-side dry
// run, nothing is stored).
func TestGoldenVirtualIPsAreAcceptedByTheAPIServer(t *testing.T) {
	env, err := envtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	total := 0
	for file, objects := range goldenObjects(t) {
		for _, u := range objects {
			total++
			t.Run(file+"/"+u.GetName(), func(t *testing.T) {
				if err := env.Client.Create(context.Background(), u, client.DryRunAll); err != nil {
					t.Fatalf("rejected: %v", err)
				}
			})
		}
	}
	if total < 30 {
		t.Errorf("only %d VirtualIPs in the golden outputs", total)
	}
	t.Logf("%d VirtualIPs accepted", total)

	// The control: the same dry run rejects what the schema forbids, so acceptance above
	// means something.
	bad := goldenObjects(t)["basic.yaml"][0]
	if err := unstructured.SetNestedField(bad.Object, "10.0.0.100/24", "spec", "address"); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(context.Background(), bad, client.DryRunAll); !apierrors.IsInvalid(err) {
		t.Errorf("a CIDR address was not rejected as invalid: %v", err)
	}
}

var (
	buildOnce sync.Once
	vigilBin  string
	buildErr  error
)

// vigil builds bin/vigil once into a temporary directory and runs it.
func vigil(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-convert-test")
		if err != nil {
			buildErr = err
			return
		}
		vigilBin = filepath.Join(dir, "vigil")
		cmd := exec.Command("go", "build", "-o", vigilBin, "./cmd/vigil")
		cmd.Dir = envtest.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("building vigil: %v", buildErr)
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(vigilBin, args...)
	cmd.Dir = t.TempDir()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// writeFile writes a file into dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const hostConf = `vrrp_instance VI_1 {
    state %s
    interface eth0
    virtual_router_id 51
    priority %s
    virtual_ipaddress {
        10.0.0.100/24
    }
}
`

// The command line: files per host with --node, stdin, help, and one-line errors with a
// non-zero exit.
func TestConvertCommandLine(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.conf", fmt.Sprintf(hostConf, "MASTER", "150"))
	b := writeFile(t, dir, "b.conf", fmt.Sprintf(hostConf, "BACKUP", "100"))
	bad := writeFile(t, dir, "bad.conf", "vrrp_instance VI_1 {\n  state MASTER\n}\n}\n")

	out, errOut, code := vigil(t, "", "convert", "keepalived", "--node", "node-a", a, "--node=node-b", b)
	if code != 0 || errOut != "" {
		t.Fatalf("two hosts: exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"name: vi-1", "kubernetes.io/hostname: node-a", "priority: 150", "kubernetes.io/hostname: node-b", "priority: 100", "preemption: Always"} {
		if !strings.Contains(out, want) {
			t.Errorf("two hosts: output lacks %q:\n%s", want, out)
		}
	}

	out, _, code = vigil(t, fmt.Sprintf(hostConf, "MASTER", "150"), "convert", "keepalived")
	if code != 0 || !strings.Contains(out, "address: 10.0.0.100") || !strings.Contains(out, "# Input: stdin") {
		t.Errorf("stdin: exit %d, output:\n%s", code, out)
	}
	out, _, code = vigil(t, "vrrp_instance X { virtual_ipaddress { 10.0.0.7 } }", "convert", "keepalived", "-")
	if code != 0 || !strings.Contains(out, "address: 10.0.0.7") {
		t.Errorf("stdin as -: exit %d, output:\n%s", code, out)
	}

	_, errOut, code = vigil(t, "", "convert", "keepalived", "-h")
	if code != 0 || !strings.Contains(errOut, "Usage: vigil convert keepalived") {
		t.Errorf("-h: exit %d, stderr %q", code, errOut)
	}
	_, errOut, _ = vigil(t, "", "help")
	if !strings.Contains(errOut, "vigil convert keepalived [flags] FILE...   print VirtualIPs for a keepalived.conf") {
		t.Errorf("vigil help does not list convert:\n%s", errOut)
	}

	failures := []struct {
		args []string
		want string
	}{
		{[]string{"convert", "keepalived", bad}, "vigil: convert keepalived: " + bad + ":4: unbalanced '}'\n"},
		{[]string{"convert", "keepalived", filepath.Join(dir, "nope.conf")}, "vigil: convert keepalived: reading " + filepath.Join(dir, "nope.conf") + ": open " + filepath.Join(dir, "nope.conf") + ": no such file or directory\n"},
		{[]string{"convert", "keepalived", "--node", "Node_A", a}, "vigil: convert keepalived: invalid value \"Node_A\" for flag -node: node name \"Node_A\": want a node's kubernetes.io/hostname label: lower case letters, digits, '-' and '.', at most 63 characters (see -h)\n"},
		{[]string{"convert", "keepalived", "--bogus", a}, "vigil: convert keepalived: flag provided but not defined: -bogus (see -h)\n"},
		{[]string{"convert", "keepalived", "-", "-"}, "vigil: convert keepalived: standard input (\"-\") can be read only once\n"},
		{[]string{"convert", "yaml"}, "vigil: convert: unknown format \"yaml\": want keepalived\n"},
	}
	for _, tc := range failures {
		out, errOut, code := vigil(t, "", tc.args...)
		if code == 0 || out != "" || errOut != tc.want {
			t.Errorf("vigil %s: exit %d, stdout %q, stderr\n  %q\nwant\n  %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
	_, errOut, code = vigil(t, "", "convert")
	if code == 0 || !strings.HasSuffix(errOut, "vigil: convert: a format is required: keepalived\n") {
		t.Errorf("convert without a format: exit %d, stderr %q", code, errOut)
	}
}
