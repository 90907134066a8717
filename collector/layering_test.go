package collector

import (
	"archive/tar"
	"context"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// layerFiles lists what an image's layers hold, as "path type size" per entry, the directories of every
// layer once.
func layerFiles(t *testing.T, img v1.Image) (files []string, digests []string) {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			key := h.Name + " " + string(h.Typeflag) + " " + h.Linkname
			if h.Typeflag != tar.TypeDir {
				key += " " + strconv.FormatInt(h.Size, 10)
				if seen[key] {
					t.Errorf("%s is in two layers", h.Name)
				}
			}
			if !seen[key] {
				seen[key] = true
				files = append(files, key)
			}
		}
		rc.Close()
	}
	slices.Sort(files)
	return files, digests
}

func TestPackageLayering(t *testing.T) {
	if _, err := filepath.Glob("/var/lib/dpkg/status"); err != nil {
		t.Skip("no dpkg database on this machine")
	}
	build := func(prog, layering string, maxLayers int) v1.Image {
		t.Helper()
		c := &captureSink{}
		s := Spec{Root: hostRoot(t), Programs: []Program{{Path: prog}}, Sink: c,
			Image: ImageConfig{Layering: layering, MaxLayers: maxLayers}}
		if _, err := Build(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		return c.a.Image
	}
	curl := build("/usr/bin/curl", LayeringPackage, 0)
	single := build("/usr/bin/curl", LayeringSingle, 0)
	got, curlLayers := layerFiles(t, curl)
	want, _ := layerFiles(t, single)
	if !slices.Equal(got, want) {
		t.Errorf("the package layers hold other files than the single layer:\n  layered %d entries\n  single  %d entries", len(got), len(want))
	}
	if len(curlLayers) < 10 || len(curlLayers) > DefaultMaxLayers {
		t.Errorf("curl has %d layers, want 10 to %d", len(curlLayers), DefaultMaxLayers)
	}
	if again := build("/usr/bin/curl", LayeringPackage, 0); mustDigest(t, again) != mustDigest(t, curl) {
		t.Error("package layering is not reproducible")
	}
	// Another program of the same root shares the layers of the packages both need (libc6's libc.so.6 alone,
	// libssl3's libcrypto...), and its own files are in its own top layer.
	_, gitLayers := layerFiles(t, build("/usr/bin/git", LayeringPackage, 0))
	shared := 0
	for _, d := range gitLayers {
		if slices.Contains(curlLayers, d) {
			shared++
		}
	}
	if shared < 5 {
		t.Errorf("curl and git share %d layers, want at least 5", shared)
	}
	// A small budget merges the smallest packages into one layer, and still holds every file.
	small := build("/usr/bin/curl", LayeringPackage, 4)
	got, ds := layerFiles(t, small)
	if len(ds) != 4 {
		t.Errorf("--max-layers 4 gave %d layers", len(ds))
	}
	if !slices.Equal(got, want) {
		t.Error("with a budget of 4 the layers hold other files than the single layer")
	}
	if err := CheckLayering("by-size", 0); err == nil {
		t.Error("an unknown layering is accepted")
	}
}
