// Command image assembles Vigil's container image without a daemon: an OCI image index with
// one image per platform, each FROM scratch with the CA bundle and the static vigil binary,
// written as an OCI image-layout tarball (an oci-archive). `make image` builds the binaries
// with the Makefile's GO_BUILD line, then runs this program; see docs/image.md.
//
// The output is reproducible: file times come from SOURCE_DATE_EPOCH, owners are root and
// entries are sorted, so the same binaries and CA bundle give the same digest.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// options is what one run assembles, from the command line.
type options struct {
	binDir     string // holds <os>_<arch>/vigil for every platform
	out        string // the oci-archive to write
	repository string // e.g. ghcr.io/vigil-dev/vigil; with version it names the image
	version    string
	commit     string
	source     string // org.opencontainers.image.source
	licenses   string // org.opencontainers.image.licenses (SPDX)
	caBundle   string
	platforms  []v1.Platform
	created    time.Time // every file's mtime and the config's created time
	started    time.Time // when `make image` started, for the total time it prints
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

// parseFlags reads the options; SOURCE_DATE_EPOCH is the default creation time, as in
// reproducible builds.
func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.StringVar(&o.binDir, "bin-dir", "bin", "directory holding <os>_<arch>/vigil for every platform")
	fs.StringVar(&o.out, "out", "bin/vigil-image.tar", "the OCI image-layout tarball (oci-archive) to write")
	fs.StringVar(&o.repository, "repository", "ghcr.io/vigil-dev/vigil", "image repository; the image is named <repository>:<version>")
	fs.StringVar(&o.version, "version", "", "release version (the chart's appVersion); also the tag")
	fs.StringVar(&o.commit, "commit", "", "git commit the binaries were built from")
	fs.StringVar(&o.source, "source", "https://github.com/vigil-dev/vigil", "source repository URL for the org.opencontainers.image.source label")
	fs.StringVar(&o.licenses, "licenses", "Apache-2.0", "SPDX license expression for the org.opencontainers.image.licenses label")
	fs.StringVar(&o.caBundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into the image (Debian's ca-certificates)")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated os/arch list")
	epoch := fs.String("source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "Unix seconds for file mtimes and the created time (default $SOURCE_DATE_EPOCH, else 0)")
	started := fs.Int64("started", 0, "Unix nanoseconds when the whole build started, to print its duration (default: now)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.version == "" || o.commit == "" {
		return o, errors.New("-version and -commit are required")
	}
	var err error
	if o.platforms, err = parsePlatforms(*platforms); err != nil {
		return o, err
	}
	if o.created, err = parseEpoch(*epoch); err != nil {
		return o, err
	}
	o.started = time.Now()
	if *started > 0 {
		o.started = time.Unix(0, *started)
	}
	return o, nil
}

// parsePlatforms turns "linux/amd64,linux/arm64" into platforms.
func parsePlatforms(list string) ([]v1.Platform, error) {
	var platforms []v1.Platform
	for _, s := range strings.Split(list, ",") {
		osName, arch, ok := strings.Cut(strings.TrimSpace(s), "/")
		if !ok || osName == "" || arch == "" || strings.Contains(arch, "/") {
			return nil, fmt.Errorf("platform %q: want os/arch, e.g. linux/amd64", s)
		}
		platforms = append(platforms, v1.Platform{OS: osName, Architecture: arch})
	}
	return platforms, nil
}

// parseEpoch reads Unix seconds; empty means the epoch itself, still reproducible.
func parseEpoch(s string) (time.Time, error) {
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("source date epoch %q: want non-negative Unix seconds", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// binaryPath is where `make image` put the vigil binary for a platform.
func (o options) binaryPath(p v1.Platform) string {
	return filepath.Join(o.binDir, p.OS+"_"+p.Architecture, "vigil")
}

// ref names the image, as tag in the layout and as the tag to push.
func (o options) ref() string {
	return o.repository + ":" + o.version
}

// checkInputs fails before any work when a file the image needs is missing, saying how
// to get it.
func checkInputs(o options) error {
	if _, err := os.Stat(o.caBundle); err != nil {
		return fmt.Errorf("CA bundle %s: %w (it comes from Debian's ca-certificates package: apt-get install ca-certificates)", o.caBundle, err)
	}
	for _, p := range o.platforms {
		if _, err := os.Stat(o.binaryPath(p)); err != nil {
			return fmt.Errorf("binary for %s: %w (`make image` builds it)", p, err)
		}
	}
	return nil
}

// run assembles the index, writes the archive and prints one line per platform, the
// time taken and, last, the archive, the image's name and the index digest.
func run(o options) error {
	if err := checkInputs(o); err != nil {
		return err
	}
	assembling := time.Now()
	idx, err := buildIndex(o)
	if err != nil {
		return err
	}
	digest, err := writeOCIArchive(idx, o.ref(), o.out, o.created)
	if err != nil {
		return err
	}
	if err := printPlatforms(idx); err != nil {
		return err
	}
	fmt.Printf("image assembled in %.1fs; make image took %.1fs\n",
		time.Since(assembling).Seconds(), time.Since(o.started).Seconds())
	fmt.Printf("%s: %s %s\n", o.out, o.ref(), digest)
	return nil
}
