package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// referrerDoc checks that art is an SBOM referrer of subject and returns its document.
func referrerDoc(t *testing.T, art v1.Image, subject v1.Hash, mediaType string) []byte {
	t.Helper()
	m, err := art.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject == nil || m.Subject.Digest != subject || string(m.Config.MediaType) != mediaType || len(m.Layers) != 1 {
		t.Fatalf("the referrer's manifest: subject %v, config %s, %d layers; want subject %s, %s, 1", m.Subject, m.Config.MediaType, len(m.Layers), subject, mediaType)
	}
	ls, _ := art.Layers()
	rc, err := ls[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return b
}

// TestSBOMReferrers: the SBOM is attached to an OCI layout's image and to a pushed image as an OCI referrer
// whose subject is the image, holding the same document as the image's own copy.
func TestSBOMReferrers(t *testing.T) {
	needRoot(t)
	needTools(t, "curl")
	dir := filepath.Join(t.TempDir(), "layout")
	digest := buildDigest(t, "/usr/bin/curl", "--sbom", "spdx", "-o", "oci:"+dir+":t")
	subject, err := v1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := p.ImageIndex()
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Fatalf("the layout holds %d manifests, want the image and its SBOM", len(im.Manifests))
	}
	art, err := idx.Image(im.Manifests[1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	doc := referrerDoc(t, art, subject, "application/spdx+json")
	root := filepath.Join(t.TempDir(), "root")
	buildOK(t, "/usr/bin/curl", "--sbom", "spdx", "-o", "dir:"+root)
	inImage, err := os.ReadFile(filepath.Join(root, "var/lib/scratchpack/sbom.spdx.json"))
	if err != nil || !bytes.Equal(doc, inImage) {
		t.Errorf("the referrer's document is not the image's own SBOM (%v)", err)
	}

	t.Run("registry", func(t *testing.T) {
		reg := startRegistry(t)
		ref := reg + "/scratchpack/curl:sbom"
		d := buildDigest(t, "/usr/bin/curl", "--sbom", "cyclonedx", "-o", "docker://"+ref)
		r, err := name.NewDigest(reg + "/scratchpack/curl@" + d)
		if err != nil {
			t.Fatal(err)
		}
		refs, err := remote.Referrers(r)
		if err != nil {
			t.Fatal(err)
		}
		rm, _ := refs.IndexManifest()
		if len(rm.Manifests) != 1 || rm.Manifests[0].ArtifactType != "application/vnd.cyclonedx+json" {
			t.Fatalf("referrers of %s: %+v", r, rm.Manifests)
		}
		art, err := remote.Image(r.Context().Digest(rm.Manifests[0].Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		h, _ := v1.NewHash(d)
		if doc := referrerDoc(t, art, h, "application/vnd.cyclonedx+json"); !bytes.Contains(doc, []byte(`"bomFormat": "CycloneDX"`)) {
			t.Errorf("the pushed referrer holds no CycloneDX BOM")
		}
	})
}
