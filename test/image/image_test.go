package image_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

const (
	testRepository = "registry.example/vigil"
	caBundle       = "/etc/ssl/certs/ca-certificates.crt"
	// The source date the test builds with; the config's created time must be it.
	testEpoch = 1700000000
)

// TestMakeImage runs `make image` twice into temp dirs: the archives must be identical,
// and the image must hold both platforms, the CA bundle and a vigil that runs here.
func TestMakeImage(t *testing.T) {
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		t.Fatalf("the image's binaries are linux/amd64 and linux/arm64; this host is %s/%s and cannot run them", runtime.GOOS, runtime.GOARCH)
	}
	if _, err := os.Stat(caBundle); err != nil {
		t.Fatalf("make image needs %s: apt-get install ca-certificates (%v)", caBundle, err)
	}
	first, digest := makeImage(t)
	second, again := makeImage(t)
	if digest != again {
		t.Errorf("make image is not reproducible: index %s, then %s", digest, again)
	}
	if !bytes.Equal(readFile(t, first), readFile(t, second)) {
		t.Errorf("make image is not reproducible: %s and %s differ", first, second)
	}

	idx := openArchive(t, first, digest)
	images := imagesByPlatform(t, idx)
	if got := slices.Sorted(maps.Keys(images)); !slices.Equal(got, []string{"linux/amd64", "linux/arm64"}) {
		t.Fatalf("the index holds %v, want [linux/amd64 linux/arm64]", got)
	}
	for platform, img := range images {
		t.Run(platform, func(t *testing.T) { checkImage(t, platform, img) })
	}
}

// makeImage runs `make image` into a temp dir and returns the archive and the index
// digest printed on the last line.
func makeImage(t *testing.T) (archive, digest string) {
	t.Helper()
	dir := t.TempDir()
	start := time.Now()
	out := runMakeNiced(t, "-s", "image", "IMAGE_DIR="+dir, "IMAGE="+testRepository,
		"VERSION="+testVersion, "COMMIT="+testCommit, "SOURCE_DATE_EPOCH="+strconv.Itoa(testEpoch))
	t.Logf("make image took %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := strings.Fields(lines[len(lines)-1])
	archive = filepath.Join(dir, "vigil-image.tar")
	want := []string{archive + ":", testRepository + ":" + testVersion}
	if len(fields) != 3 || !slices.Equal(fields[:2], want) || !strings.HasPrefix(fields[2], "sha256:") {
		t.Fatalf("make image's last line is %q, want %q followed by the index digest", lines[len(lines)-1], strings.Join(want, " "))
	}
	return archive, fields[2]
}

// openArchive extracts the oci-archive and opens it as an OCI layout. Its index.json must
// name exactly one image index: digest, tagged <repository>:<version>.
func openArchive(t *testing.T, archive, digest string) v1.ImageIndex {
	t.Helper()
	dir := t.TempDir()
	extractTar(t, archive, dir)
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("%s is not an OCI image layout: %v", archive, err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatalf("reading index.json: %v", err)
	}
	manifest, err := top.IndexManifest()
	if err != nil {
		t.Fatalf("reading index.json: %v", err)
	}
	if len(manifest.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want 1 (the image index)", len(manifest.Manifests))
	}
	desc := manifest.Manifests[0]
	if desc.Digest.String() != digest || !desc.MediaType.IsIndex() {
		t.Errorf("index.json names %s %s, want the image index %s that make image printed", desc.MediaType, desc.Digest, digest)
	}
	if name, want := desc.Annotations["org.opencontainers.image.ref.name"], testRepository+":"+testVersion; name != want {
		t.Errorf("index.json names the image %q, want %q", name, want)
	}
	idx, err := top.ImageIndex(desc.Digest)
	if err != nil {
		t.Fatalf("opening the image index: %v", err)
	}
	return idx
}

// imagesByPlatform maps "os/arch" to the index's image for it.
func imagesByPlatform(t *testing.T, idx v1.ImageIndex) map[string]v1.Image {
	t.Helper()
	manifest, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("reading the image index: %v", err)
	}
	images := map[string]v1.Image{}
	for _, desc := range manifest.Manifests {
		if desc.Platform == nil {
			t.Fatalf("the index lists %s without a platform", desc.Digest)
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatalf("opening the image for %s: %v", desc.Platform, err)
		}
		images[desc.Platform.String()] = img
	}
	return images
}

// checkImage checks one platform's config and files, and runs its vigil when the
// platform is this host's.
func checkImage(t *testing.T, platform string, img v1.Image) {
	checkConfig(t, platform, img)
	files := imageFiles(t, img)
	vigil, ok := files["vigil"]
	if !ok || vigil.header.Mode != 0o755 || vigil.header.Uid != 0 || vigil.header.Gid != 0 {
		t.Fatalf("/vigil is missing or not root-owned with mode 0755: %+v", vigil.header)
	}
	ca, ok := files[strings.TrimPrefix(caBundle, "/")]
	if !ok || !bytes.Equal(ca.data, readFile(t, caBundle)) {
		t.Errorf("the image's %s is missing or differs from the build host's", caBundle)
	}
	if platform == runtime.GOOS+"/"+runtime.GOARCH {
		checkVersion(t, vigil.data)
	}
}

// checkConfig checks what the chart relies on: the entrypoint, no Cmd and no User (the
// chart passes the command and sets the user), and the labels, env and platform.
func checkConfig(t *testing.T, platform string, img v1.Image) {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("reading the config: %v", err)
	}
	c := cfg.Config
	if !slices.Equal(c.Entrypoint, []string{"/vigil"}) || len(c.Cmd) != 0 || c.User != "" || c.WorkingDir != "/" {
		t.Errorf("config: entrypoint %q, cmd %q, user %q, workdir %q; want [/vigil], none, none, /", c.Entrypoint, c.Cmd, c.User, c.WorkingDir)
	}
	if got := cfg.OS + "/" + cfg.Architecture; got != platform {
		t.Errorf("the config says %s, the index %s", got, platform)
	}
	if !slices.Contains(c.Env, "SSL_CERT_FILE="+caBundle) {
		t.Errorf("env %q lacks SSL_CERT_FILE=%s", c.Env, caBundle)
	}
	for label, want := range map[string]string{"title": "vigil", "version": testVersion, "revision": testCommit} {
		if got := c.Labels["org.opencontainers.image."+label]; got != want {
			t.Errorf("label org.opencontainers.image.%s = %q, want %q", label, got, want)
		}
	}
	for _, label := range []string{"source", "licenses"} {
		if c.Labels["org.opencontainers.image."+label] == "" {
			t.Errorf("label org.opencontainers.image.%s is missing", label)
		}
	}
	if !cfg.Created.Equal(time.Unix(testEpoch, 0)) {
		t.Errorf("created %s, want SOURCE_DATE_EPOCH %d", cfg.Created.Time, testEpoch)
	}
}

// checkVersion runs the image's binary: `vigil version` must print the stamp.
func checkVersion(t *testing.T, binary []byte) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vigil")
	if err := os.WriteFile(bin, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("vigil version: %v\n%s", err, out)
	}
	want := "vigil " + testVersion + " (commit " + testCommit + ", "
	if !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("vigil version printed %q, want %q... %s/%s", out, want, runtime.GOOS, runtime.GOARCH)
	}
}

// imageFile is one regular file of an image's flattened filesystem.
type imageFile struct {
	header *tar.Header
	data   []byte
}

// imageFiles flattens the image's layers and returns its regular files by path.
func imageFiles(t *testing.T, img v1.Image) map[string]imageFile {
	t.Helper()
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	files := map[string]imageFile{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("reading the image's files: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s from the image: %v", h.Name, err)
		}
		files[path.Clean(h.Name)] = imageFile{header: h, data: data}
	}
}
