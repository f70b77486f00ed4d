package main

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// refNameAnnotation names an image in an OCI layout's index.json: skopeo's
// oci-archive:FILE:NAME and containerd's import look it up.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// writeOCIArchive writes idx as an OCI image layout (oci-layout, index.json pointing at
// the index under the name ref, blobs/sha256/...) and tars it to out, which skopeo reads
// as oci-archive:out. It returns the index digest, which is what a registry will serve.
func writeOCIArchive(idx v1.ImageIndex, ref, out string, mtime time.Time) (v1.Hash, error) {
	digest, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("computing the index digest: %w", err)
	}
	dir, err := os.MkdirTemp(filepath.Dir(out), ".vigil-image-layout-")
	if err != nil {
		return v1.Hash{}, fmt.Errorf("creating a directory for the OCI layout: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing the OCI layout in %s: %w", dir, err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{refNameAnnotation: ref})); err != nil {
		return v1.Hash{}, fmt.Errorf("writing the image index to the OCI layout: %w", err)
	}
	if err := tarDirectoryTo(dir, out, mtime); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}

// tarDirectoryTo tars dir's contents into out, replacing it only once complete so that an
// interrupted build never leaves a truncated archive behind.
func tarDirectoryTo(dir, out string, mtime time.Time) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".vigil-image-*.tar")
	if err != nil {
		return fmt.Errorf("creating the archive: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tarDirectory(dir, tmp, mtime); err != nil {
		return fmt.Errorf("archiving the OCI layout: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("setting the archive's mode: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("moving the archive into place: %w", err)
	}
	return nil
}

// tarDirectory writes dir's tree to w with paths relative to dir (oci-layout, index.json
// and blobs/ at the top, as the OCI image layout wants), in lexical order, root-owned, with
// fixed modes and times, so the archive's bytes depend only on the layout's contents.
func tarDirectory(dir string, w io.Writer, mtime time.Time) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Format: tar.FormatPAX}
		if d.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
			return tw.WriteHeader(h)
		}
		return addFile(tw, h, p)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// addFile writes one regular file, read-only for everyone but its owner.
func addFile(tw *tar.Writer, h *tar.Header, hostPath string) error {
	f, err := os.Open(hostPath)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, info.Size()
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("tar header for %s: %w", h.Name, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("tar content of %s: %w", h.Name, err)
	}
	return nil
}
