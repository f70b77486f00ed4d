package main

import (
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// printPlatforms prints each platform's manifest digest and its size: the compressed
// layers (what a node pulls) and the unpacked files (what it stores).
func printPlatforms(idx v1.ImageIndex) error {
	manifest, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("reading the index: %w", err)
	}
	for _, desc := range manifest.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return fmt.Errorf("image %s: %w", desc.Digest, err)
		}
		compressed, uncompressed, err := layerSizes(img)
		if err != nil {
			return fmt.Errorf("image %s: %w", desc.Digest, err)
		}
		fmt.Printf("  %-12s %s  %s compressed, %s uncompressed\n",
			desc.Platform, desc.Digest, mib(compressed), mib(uncompressed))
	}
	return nil
}

// layerSizes adds up the compressed and uncompressed sizes of an image's layers.
func layerSizes(img v1.Image) (compressed, uncompressed int64, err error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, 0, fmt.Errorf("listing layers: %w", err)
	}
	for _, l := range layers {
		size, err := l.Size()
		if err != nil {
			return 0, 0, fmt.Errorf("layer size: %w", err)
		}
		compressed += size
		n, err := uncompressedSize(l)
		if err != nil {
			return 0, 0, err
		}
		uncompressed += n
	}
	return compressed, uncompressed, nil
}

// uncompressedSize counts the bytes of a layer's tar.
func uncompressedSize(l v1.Layer) (int64, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, fmt.Errorf("opening a layer: %w", err)
	}
	defer func() { _ = rc.Close() }()
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		return 0, fmt.Errorf("reading a layer: %w", err)
	}
	return n, nil
}

// mib formats a byte count in MiB with one decimal.
func mib(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
