package collector

import (
	"context"
	"errors"
	"fmt"
)

// LayoutSink writes the image as an OCI image layout, named Tag in its index.json (see WriteOCILayout).
type LayoutSink struct {
	Path, Tag string
	Force     bool
}

func (s *LayoutSink) Check() error     { return CheckDest(s.Path, s.Force) }
func (s *LayoutSink) WantsImage() bool { return true }
func (s *LayoutSink) String() string   { return "oci:" + s.Path }

func (s *LayoutSink) Publish(_ context.Context, a Artifact) (string, error) {
	if a.Image == nil {
		return "", errors.New("no image to write")
	}
	d, err := a.Image.Digest()
	if err != nil {
		return "", err
	}
	if err := WriteOCILayout(a.Image, s.Path, s.Tag, s.Force); err != nil {
		return "", err
	}
	if a.SBOM != nil {
		if err := appendLayoutReferrer(s.Path, a.Image, a.SBOM, a.SBOMFormat); err != nil {
			return "", err
		}
	}
	return d.String(), nil
}

// PublishIndex writes the index as the layout's image (index.json names it, tagged Tag), each child's SBOM
// attached to it as a referrer.
func (s *LayoutSink) PublishIndex(_ context.Context, ix IndexArtifact) (string, error) {
	d, err := ix.Index.Digest()
	if err != nil {
		return "", err
	}
	if err := WriteOCIIndexLayout(ix.Index, s.Path, s.Tag, s.Force); err != nil {
		return "", err
	}
	for _, c := range ix.Children {
		if c.SBOM != nil {
			if err := appendLayoutReferrer(s.Path, c.Image, c.SBOM, c.SBOMFormat); err != nil {
				return "", err
			}
		}
	}
	return d.String(), nil
}

// ArchiveSink writes the image as a `docker load` tarball tagged Ref (see WriteDockerArchive). Such an
// archive keeps no manifest (docker load makes up its own), so the stable name of what it holds, and what
// Publish returns, is the config digest: the image ID `docker load` prints.
type ArchiveSink struct {
	Path, Ref string
	Force     bool
}

func (s *ArchiveSink) Check() error     { return CheckDest(s.Path, s.Force) }
func (s *ArchiveSink) WantsImage() bool { return true }
func (s *ArchiveSink) String() string   { return "docker-archive:" + s.Path }

func (s *ArchiveSink) Publish(_ context.Context, a Artifact) (string, error) {
	if a.Image == nil {
		return "", errors.New("no image to write")
	}
	if err := WriteDockerArchive(a.Image, s.Path, s.Ref, s.Force); err != nil {
		return "", err
	}
	id, err := a.Image.ConfigName()
	if err != nil {
		return "", fmt.Errorf("writing the docker archive %s: %w", s.Path, err)
	}
	return id.String(), nil
}
