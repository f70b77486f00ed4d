package keepalived

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden .yaml files under testdata from the converter's output")

// goldenCase is one input under testdata and its expected output NAME.yaml: NAME.conf is one
// host whose node is not given; a directory NAME holds one NODE.conf per host (except fuzz,
// the fuzzers' regression inputs).
type goldenCase struct {
	name    string
	sources []Source
}

// goldenCases reads every input under testdata.
func goldenCases(t testing.TB) []goldenCase {
	t.Helper()
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	for _, e := range entries {
		name, isConf := strings.CutSuffix(e.Name(), ".conf")
		switch {
		case e.IsDir() && e.Name() != "fuzz":
			cases = append(cases, goldenCase{name: e.Name(), sources: hostSources(t, filepath.Join("testdata", e.Name()))})
		case isConf:
			cases = append(cases, goldenCase{name: name, sources: []Source{{Config: parseFile(t, filepath.Join("testdata", e.Name()))}}})
		}
	}
	return cases
}

// hostSources reads a directory of NODE.conf files, one per host.
func hostSources(t testing.TB, dir string) []Source {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .conf files in %s: %v", dir, err)
	}
	var sources []Source
	for _, f := range files {
		node := strings.TrimSuffix(filepath.Base(f), ".conf")
		sources = append(sources, Source{Node: node, Config: parseFile(t, f)})
	}
	return sources
}

// parseFile parses a test input, naming it by its base name so that outputs do not depend
// on where the tests run.
func parseFile(t testing.TB, path string) *Config {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(filepath.Base(path), src)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	return cfg
}

// convertToYAML converts sources and writes them, failing the test on any error.
func convertToYAML(t testing.TB, sources []Source) ([]byte, Result) {
	t.Helper()
	res, err := Convert(sources)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteYAML(&out, res); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), res
}

// One golden file per construct: the whole output, comments included, is what a user sees.
// Run `go test ./internal/keepalived -update` to rewrite them after a deliberate change.
func TestGoldenOutputs(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			out, res := convertToYAML(t, c.sources)
			checkOutput(t, out, res)
			golden := filepath.Join("testdata", c.name+".yaml")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output differs from %s (run with -update if the change is intended):\n%s", golden, firstDifference(string(want), string(out)))
			}
		})
	}
}

// firstDifference shows the first line where got differs from want.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want %s\n  got  %s", i+1, wl, gl)
		}
	}
	return "(same lines)"
}
