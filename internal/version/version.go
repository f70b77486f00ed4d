// Package version holds what the build stamped into the binary (see the Makefile's LDFLAGS)
// and exports it as the vigil_build_info metric.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Stamped by the linker: go build -ldflags "-X vigil.dev/vigil/internal/version.Version=...".
var (
	// Version is the release, e.g. v0.1.0; "dev" in an unstamped build.
	Version = "dev"
	// Commit is the git commit the binary was built from; "unknown" when not stamped and
	// the Go toolchain recorded none.
	Commit = ""
)

// Info is what `vigil version` prints and vigil_build_info exports.
type Info struct {
	Version   string
	Commit    string
	GoVersion string
	Platform  string
}

// Get returns the stamped build information, falling back to what the Go toolchain
// recorded (vcs.revision) for a plain `go build` or `go run` inside a checkout.
func Get() Info {
	commit := Commit
	if commit == "" {
		commit = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	return Info{Version: Version, Commit: commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

// String is one line for people: "vigil v0.1.0 (commit abc123, go1.26.8, linux/amd64)".
func (i Info) String() string {
	return fmt.Sprintf("vigil %s (commit %s, %s, %s)", i.Version, i.Commit, i.GoVersion, i.Platform)
}

// NewCollector returns the vigil_build_info gauge: always 1, the build in its labels, so
// that dashboards can tell which version each controller and agent runs.
func NewCollector() prometheus.Collector {
	i := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vigil_build_info",
		Help: "Always 1; the labels say which build of vigil this process runs.",
		ConstLabels: prometheus.Labels{
			"version": i.Version, "commit": i.Commit, "goversion": i.GoVersion, "platform": i.Platform,
		},
	})
	g.Set(1)
	return g
}
