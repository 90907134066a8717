package collector

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/scratchpack/scratchpack/internal/registry"
)

// SBOMMediaType is the media type of an SBOM of the given format, also the artifact type of its referrer.
func SBOMMediaType(format string) types.MediaType {
	if format == "cyclonedx" {
		return "application/vnd.cyclonedx+json"
	}
	return "application/spdx+json"
}

// sbomReferrer is an OCI artifact holding the SBOM whose subject is img: its config's media type is the
// artifact type (what the referrers API reports when a manifest has no artifactType), its one layer the
// document.
func sbomReferrer(img v1.Image, data []byte, format string) (v1.Image, error) {
	desc, err := partial.Descriptor(img)
	if err != nil {
		return nil, err
	}
	mt := SBOMMediaType(format)
	art := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	art = mutate.ConfigMediaType(art, mt)
	art, err = mutate.Append(art, mutate.Addendum{Layer: static.NewLayer(data, mt)})
	if err != nil {
		return nil, err
	}
	ref, ok := mutate.Subject(art, *desc).(v1.Image)
	if !ok {
		return nil, fmt.Errorf("making the SBOM referrer: not an image")
	}
	return ref, nil
}

// appendLayoutReferrer adds the SBOM referrer of img to the OCI layout at dir.
func appendLayoutReferrer(dir string, img v1.Image, data []byte, format string) error {
	ref, err := sbomReferrer(img, data, format)
	if err != nil {
		return err
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return fmt.Errorf("adding the SBOM to %s: %w", dir, err)
	}
	return p.AppendImage(ref, layout.WithAnnotations(map[string]string{"org.opencontainers.image.title": "sbom." + format}))
}

// pushReferrer pushes the SBOM referrer of img, pushed as ref, by digest: the registry's referrers API lists
// it, or, for a registry without one (Debian's registry 2.8), the referrers tag sha256-DIGEST that
// go-containerregistry keeps.
func pushReferrer(ctx context.Context, img v1.Image, ref string, insecure bool, data []byte, format string, opts ...registry.Option) error {
	art, err := sbomReferrer(img, data, format)
	if err != nil {
		return err
	}
	r, ropts, err := registry.Ref(ctx, ref, insecure, opts...)
	if err != nil {
		return err
	}
	d, err := art.Digest()
	if err != nil {
		return err
	}
	if err := remote.Write(r.Context().Digest(d.String()), art, ropts...); err != nil {
		return fmt.Errorf("pushing the SBOM of %s: %w", r, err)
	}
	return nil
}
