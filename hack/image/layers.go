package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// caBundlePath is where Go, and most TLS libraries, look for the CA bundle on Linux.
const caBundlePath = "etc/ssl/certs/ca-certificates.crt"

// file is one regular file of a layer, by its path in the image (no leading slash).
type file struct {
	name string
	mode int64
	data []byte
}

// caBundleLayer holds the host's CA bundle at /etc/ssl/certs/ca-certificates.crt. It
// changes less often than the binary, so it is the lower layer and stays cached on nodes.
func caBundleLayer(hostPath string, mtime time.Time) (v1.Layer, error) {
	data, err := os.ReadFile(hostPath)
	if err != nil {
		return nil, fmt.Errorf("reading the CA bundle: %w", err)
	}
	return newLayer([]file{{name: caBundlePath, mode: 0o644, data: data}}, mtime)
}

// binaryLayer holds the static binary at /vigil.
func binaryLayer(hostPath string, mtime time.Time) (v1.Layer, error) {
	data, err := os.ReadFile(hostPath)
	if err != nil {
		return nil, fmt.Errorf("reading the vigil binary: %w", err)
	}
	return newLayer([]file{{name: "vigil", mode: 0o755, data: data}}, mtime)
}

// newLayer makes a gzipped OCI layer of files and their parent directories. The tar is
// built once in memory and the compressed bytes are cached: go-containerregistry reads a
// layer several times (digest, diff ID, writing the blob).
func newLayer(files []file, mtime time.Time) (v1.Layer, error) {
	uncompressed, err := layerTar(files, mtime)
	if err != nil {
		return nil, err
	}
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(uncompressed)), nil }
	layer, err := tarball.LayerFromOpener(open,
		tarball.WithMediaType(types.OCILayer),
		tarball.WithCompressionLevel(gzip.DefaultCompression),
		tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("compressing a layer: %w", err)
	}
	return layer, nil
}

// layerTar writes files, and a directory entry for each of their parents, as a tar whose
// bytes depend only on the files and mtime: sorted names, root-owned, fixed times.
func layerTar(files []file, mtime time.Time) ([]byte, error) {
	headers := map[string]*tar.Header{}
	contents := map[string][]byte{}
	for _, f := range files {
		for dir := path.Dir(f.name); dir != "."; dir = path.Dir(dir) {
			headers[dir+"/"] = &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}
		}
		headers[f.name] = &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data))}
		contents[f.name] = f.data
	}
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	// "etc/" sorts before "etc/ssl/": parents come before their children.
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		h := headers[name]
		h.ModTime, h.Uid, h.Gid, h.Format = mtime, 0, 0, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar header for %s: %w", name, err)
		}
		if !strings.HasSuffix(name, "/") {
			if _, err := tw.Write(contents[name]); err != nil {
				return nil, fmt.Errorf("tar content of %s: %w", name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing a layer's tar: %w", err)
	}
	return buf.Bytes(), nil
}
