package image_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vigil.dev/vigil/test/envtest"
)

// The stamp the tests build with, as make variables and as Dockerfile build args.
const (
	testVersion = "0.0.0-imagetest"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
)

// buildCommand is a `go build` command line, normalised so that lines from the Makefile
// and the Dockerfile compare: GOOS and GOARCH are taken out and the -o path is <out>.
type buildCommand struct {
	args         []string
	goos, goarch string
}

// TestDockerfileBuildsLikeMakeBuild: the Dockerfile's `go build` is `make build`'s, with
// GOOS/GOARCH from the target platform; changing either one alone fails here.
func TestDockerfileBuildsLikeMakeBuild(t *testing.T) {
	want := makeBuildCommands(t, "build")
	if len(want) != 1 {
		t.Fatalf("make -n build prints %d go build lines, want 1", len(want))
	}
	got := dockerfileBuildCommand(t)
	if !slices.Equal(got.args, want[0].args) {
		t.Errorf("the Dockerfile builds vigil with\n  %q\nbut make build with\n  %q\nmake them the same", got.args, want[0].args)
	}
	if got.goos != "${TARGETOS}" || got.goarch != "${TARGETARCH}" {
		t.Errorf("the Dockerfile builds with GOOS=%q GOARCH=%q, want ${TARGETOS} and ${TARGETARCH}", got.goos, got.goarch)
	}
}

// TestMakeImageBuildsLikeMakeBuild: `make image` builds each platform's binary with
// `make build`'s command.
func TestMakeImageBuildsLikeMakeBuild(t *testing.T) {
	want := makeBuildCommands(t, "build")[0]
	var platforms []string
	for _, got := range makeBuildCommands(t, "image") {
		platforms = append(platforms, got.goos+"/"+got.goarch)
		if !slices.Equal(got.args, want.args) {
			t.Errorf("make image builds %s/%s with\n  %q\nbut make build with\n  %q", got.goos, got.goarch, got.args, want.args)
		}
	}
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("make image builds for %v, want [linux/amd64 linux/arm64]", platforms)
	}
}

// makeBuildCommands is every `go build` line `make -n target` would run, with the test's
// version and commit.
func makeBuildCommands(t *testing.T, target string) []buildCommand {
	t.Helper()
	out := runMake(t, "-n", "-s", target, "VERSION="+testVersion, "COMMIT="+testCommit, "IMAGE_DIR=out")
	var cmds []buildCommand
	for _, line := range strings.Split(out, "\n") {
		if cmd, ok := parseBuildCommand(t, line); ok {
			cmds = append(cmds, cmd)
		}
	}
	return cmds
}

// dockerfileBuildCommand is the Dockerfile's one RUN instruction that runs `go build`,
// with the build args VERSION and COMMIT set to the test's stamp.
func dockerfileBuildCommand(t *testing.T) buildCommand {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(envtest.RepoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatalf("reading the Dockerfile: %v", err)
	}
	var found []buildCommand
	for _, instr := range dockerfileInstructions(string(data)) {
		run, ok := strings.CutPrefix(instr, "RUN ")
		if !ok {
			continue
		}
		run = strings.NewReplacer("${VERSION}", testVersion, "${COMMIT}", testCommit).Replace(run)
		if cmd, ok := parseBuildCommand(t, run); ok {
			found = append(found, cmd)
		}
	}
	if len(found) != 1 {
		t.Fatalf("the Dockerfile has %d RUN instructions with go build, want 1", len(found))
	}
	return found[0]
}

// dockerfileInstructions joins continuation lines and drops comments and blank lines.
func dockerfileInstructions(dockerfile string) []string {
	var instrs []string
	var cur strings.Builder
	for _, line := range strings.Split(dockerfile, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(trimmed)
		instrs = append(instrs, cur.String())
		cur.Reset()
	}
	return instrs
}

// parseBuildCommand reads a shell command line; ok is false unless it runs `go build`.
// RUN flags (--mount=...) and GOOS/GOARCH assignments are taken out; the -o path
// becomes <out>.
func parseBuildCommand(t *testing.T, line string) (cmd buildCommand, ok bool) {
	t.Helper()
	words, err := shellWords(line)
	if err != nil {
		t.Fatalf("parsing %q: %v", line, err)
	}
	for i, w := range words {
		switch {
		case strings.HasPrefix(w, "--mount="):
		case strings.HasPrefix(w, "GOOS="):
			cmd.goos = strings.TrimPrefix(w, "GOOS=")
		case strings.HasPrefix(w, "GOARCH="):
			cmd.goarch = strings.TrimPrefix(w, "GOARCH=")
		case i > 0 && words[i-1] == "-o":
			cmd.args = append(cmd.args, "<out>")
		default:
			cmd.args = append(cmd.args, w)
		}
	}
	i := slices.Index(cmd.args, "go")
	return cmd, i >= 0 && i+1 < len(cmd.args) && cmd.args[i+1] == "build"
}

// shellWords splits a command line as a POSIX shell would, for the quoting that make
// and Dockerfiles use: blanks, '...', "..." and backslash escapes. No expansion.
func shellWords(line string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, word.String()), false
				word.Reset()
			}
			continue
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, errUnterminated
			}
			word.WriteString(line[i+1 : i+1+end])
			i += 1 + end
		case c == '"':
			n, err := readDoubleQuoted(line[i+1:], &word)
			if err != nil {
				return nil, err
			}
			i += n // at the closing quote
		case c == '\\' && i+1 < len(line):
			i++
			word.WriteByte(line[i])
		default:
			word.WriteByte(c)
		}
		inWord = true
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}
