package collector

import (
	"context"
	"errors"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scratchpack/scratchpack/internal/registry"
)

// RegistrySink pushes the image to a registry (see Push).
type RegistrySink struct {
	Ref      string
	Insecure bool
	Progress chan<- v1.Update
	Timeout  time.Duration // bound on each request, a blob's upload included (0: the default)
	// CredentialHelpers lets the Docker config's credsStore and credHelpers run for credentials.
	CredentialHelpers bool
	// Cache, if set, records which repositories each layer was pushed to, so that a push to another
	// repository of the same registry mounts the layer from there instead of sending it.
	Cache *LayerCache
}

func (s *RegistrySink) Check() error     { return nil }
func (s *RegistrySink) WantsImage() bool { return true }
func (s *RegistrySink) String() string   { return "docker://" + s.Ref }

func (s *RegistrySink) Publish(ctx context.Context, a Artifact) (string, error) {
	if a.Image == nil {
		return "", errors.New("no image to push")
	}
	d, err := push(ctx, a.Image, s.Ref, s.Insecure, s.Progress, s.Timeout, s.CredentialHelpers, s.Cache)
	if err != nil {
		return "", err
	}
	if a.SBOM != nil {
		opts := []registry.Option{registry.WithCredentialHelpers(s.CredentialHelpers)}
		if s.Timeout > 0 {
			opts = append(opts, registry.WithRequestTimeout(s.Timeout))
		}
		if err := pushReferrer(ctx, a.Image, s.Ref, s.Insecure, a.SBOM, a.SBOMFormat, opts...); err != nil {
			return "", err
		}
	}
	return d.String(), nil
}

// PublishIndex pushes the index with its children, then each child's SBOM as its referrer.
func (s *RegistrySink) PublishIndex(ctx context.Context, ix IndexArtifact) (string, error) {
	d, err := pushIndex(ctx, ix.Index, s.Ref, s.Insecure, s.Progress, s.Timeout, s.CredentialHelpers)
	if err != nil {
		return "", err
	}
	for _, c := range ix.Children {
		if c.SBOM == nil {
			continue
		}
		opts := []registry.Option{registry.WithCredentialHelpers(s.CredentialHelpers)}
		if s.Timeout > 0 {
			opts = append(opts, registry.WithRequestTimeout(s.Timeout))
		}
		if err := pushReferrer(ctx, c.Image, s.Ref, s.Insecure, c.SBOM, c.SBOMFormat, opts...); err != nil {
			return "", err
		}
	}
	return d.String(), nil
}
