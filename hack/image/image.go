package main

import (
	"errors"
	"fmt"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// buildIndex makes the OCI image index: one image per platform, all sharing the CA layer.
// The platforms' images are built concurrently: compressing each binary takes seconds.
func buildIndex(o options) (v1.ImageIndex, error) {
	caLayer, err := caBundleLayer(o.caBundle, o.created)
	if err != nil {
		return nil, err
	}
	images := make([]v1.Image, len(o.platforms))
	errs := make([]error, len(o.platforms))
	var wg sync.WaitGroup
	for i, p := range o.platforms {
		wg.Go(func() {
			if images[i], errs[i] = platformImage(o, p, caLayer); errs[i] != nil {
				errs[i] = fmt.Errorf("image for %s: %w", p, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	adds := make([]mutate.IndexAddendum, len(images))
	for i, img := range images {
		// The descriptor's platform is what a runtime matches its node against.
		adds[i] = mutate.IndexAddendum{Add: plainImage{img}, Descriptor: v1.Descriptor{Platform: &o.platforms[i]}}
	}
	return mutate.AppendManifests(empty.Index, adds...), nil
}

// plainImage is an image whose index descriptor has no artifactType. go-containerregistry
// sets it to the config's media type, which the OCI spec allows but meant for artifacts;
// Docker's and BuildKit's indexes leave it out, and so does this one.
type plainImage struct{ v1.Image }

// ArtifactType is empty: this is an image, not an artifact.
func (plainImage) ArtifactType() (string, error) { return "", nil }

// platformImage is one platform's image: FROM scratch, the CA bundle, then /vigil.
func platformImage(o options, p v1.Platform, caLayer v1.Layer) (v1.Image, error) {
	binLayer, err := binaryLayer(o.binaryPath(p), o.created)
	if err != nil {
		return nil, err
	}
	// OCI media types throughout: empty.Image is a Docker schema 2 image.
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, imageConfig(o, p))
	if err != nil {
		return nil, fmt.Errorf("setting the config: %w", err)
	}
	created := v1.Time{Time: o.created}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: caLayer, History: v1.History{Created: created,
			CreatedBy: "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt", Comment: "make image"}},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: created,
			CreatedBy: "COPY vigil /vigil", Comment: "make image"}},
	)
	if err != nil {
		return nil, fmt.Errorf("adding the layers: %w", err)
	}
	return img, nil
}

// imageConfig is the runtime config. No Cmd: the chart passes `controller` or `agent` as
// args. No User: the pod sets it per component, since the agent needs root for NET_ADMIN
// and NET_RAW while the controller should run as non-root.
func imageConfig(o options, p v1.Platform) *v1.ConfigFile {
	return &v1.ConfigFile{
		Created:      v1.Time{Time: o.created},
		OS:           p.OS,
		Architecture: p.Architecture,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: []string{"/vigil"},
			WorkingDir: "/",
			Env:        []string{"SSL_CERT_FILE=/" + caBundlePath},
			Labels: map[string]string{
				"org.opencontainers.image.title":    "vigil",
				"org.opencontainers.image.version":  o.version,
				"org.opencontainers.image.revision": o.commit,
				"org.opencontainers.image.source":   o.source,
				"org.opencontainers.image.licenses": o.licenses,
			},
		},
	}
}
