package collector

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/scratchpack/scratchpack/collector/rootfs"
)

// Two platforms of one architecture (amd64 and its v3 variant) from this machine's root: the index's
// mechanics, without a foreign tree (cmd/scratchpack's TestE2EPlatformIndex has those).
var (
	amd64Plain = v1.Platform{OS: "linux", Architecture: "amd64"}
	amd64V3    = v1.Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}
)

func platformSpec(t *testing.T, order ...v1.Platform) Spec {
	t.Helper()
	s := Spec{Programs: []Program{{Path: "/usr/bin/true"}}, Rules: RuleOptions{Base: BaseFiles{Certs: "never"}}}
	for _, p := range order {
		s.Platforms = append(s.Platforms, PlatformRoot{Platform: p, Root: hostRoot(t)})
	}
	return s
}

func TestBuildPlatformsIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	marker := filepath.Join(dir, "v3-only")
	if err := os.WriteFile(marker, []byte("v3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(out string, order ...v1.Platform) (string, *Result) {
		t.Helper()
		s := platformSpec(t, order...)
		for i := range s.Platforms {
			if s.Platforms[i].Platform.Equals(amd64V3) {
				s.Platforms[i].Adds = []Add{{Src: marker, Dest: "/etc/v3-only"}}
			}
		}
		s.Image.Annotations = map[string]string{"org.opencontainers.image.source": "test"}
		s.Sink = &LayoutSink{Path: out, Tag: "latest"}
		res, err := Build(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return res.Output, res
	}
	out := filepath.Join(dir, "oci")
	digest, res := write(out, amd64V3, amd64Plain)

	p, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].MediaType != types.OCIImageIndex || im.Manifests[0].Digest.String() != digest {
		t.Fatalf("index.json names %+v, want the one index %s", im.Manifests, digest)
	}
	if im.Manifests[0].Annotations[refNameAnnotation] != "latest" {
		t.Errorf("index.json's entry is not tagged latest: %v", im.Manifests[0].Annotations)
	}
	idx, err := top.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if ix.Annotations["org.opencontainers.image.source"] != "test" {
		t.Errorf("the index lacks the annotation: %v", ix.Annotations)
	}
	var got []string
	for i, d := range ix.Manifests {
		got = append(got, d.Platform.String())
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != d.Platform.Architecture || cf.Variant != d.Platform.Variant || cf.OS != "linux" {
			t.Errorf("child %s: config says %s/%s/%s", d.Platform, cf.OS, cf.Architecture, cf.Variant)
		}
		if d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("child %s: media type %s", d.Platform, d.MediaType)
		}
		if res.Children[i].Output != d.Digest.String() {
			t.Errorf("child %d: result says %s, the index %s", i, res.Children[i].Output, d.Digest)
		}
		hasMarker := res.Children[i].Tree.Get("/etc/v3-only") != nil
		if hasMarker != (d.Platform.Equals(amd64V3)) {
			t.Errorf("%s: /etc/v3-only in the image is %v: the per-platform add must go to its platform only", d.Platform, hasMarker)
		}
		// The child is what a one-platform build of that root makes.
		one := platformSpec(t, *d.Platform)
		if d.Platform.Equals(amd64V3) {
			one.Platforms[0].Adds = []Add{{Src: marker, Dest: "/etc/v3-only"}}
		}
		one.Image.Annotations = map[string]string{"org.opencontainers.image.source": "test"}
		alone := filepath.Join(dir, "alone-"+strings.ReplaceAll(d.Platform.String(), "/", "-"))
		one.Sink = &LayoutSink{Path: alone}
		r, err := Build(ctx, one)
		if err != nil {
			t.Fatal(err)
		}
		if r.Output != d.Digest.String() {
			t.Errorf("%s: the index's child is %s, a build of that platform alone %s", d.Platform, d.Digest, r.Output)
		}
	}
	if want := []string{"linux/amd64", "linux/amd64/v3"}; !slices.Equal(got, want) {
		t.Errorf("the index's platforms are %v, want %v (sorted, whatever order they were given in)", got, want)
	}

	// Reproducible: the other order, another time, the same index.
	again, _ := write(filepath.Join(dir, "oci2"), amd64Plain, amd64V3)
	if again != digest {
		t.Errorf("the same roots gave index %s, then %s", digest, again)
	}

	// A registry holds the same index.
	host := newRegistry(t, nil)
	s := platformSpec(t, amd64Plain, amd64V3)
	for i := range s.Platforms {
		if s.Platforms[i].Platform.Equals(amd64V3) {
			s.Platforms[i].Adds = []Add{{Src: marker, Dest: "/etc/v3-only"}}
		}
	}
	s.Image.Annotations = map[string]string{"org.opencontainers.image.source": "test"}
	s.Sink = &RegistrySink{Ref: host + "/multi:latest"}
	r, err := Build(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if r.Output != digest {
		t.Errorf("pushed index %s, the layout's %s", r.Output, digest)
	}
	ref, err := name.ParseReference(host+"/multi:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != types.OCIImageIndex || desc.Digest.String() != digest {
		t.Errorf("the registry serves %s %s, want the index %s", desc.MediaType, desc.Digest, digest)
	}
	arm, err := remote.Image(ref, remote.WithPlatform(amd64V3))
	if err != nil {
		t.Fatal(err)
	}
	if cf, err := arm.ConfigFile(); err != nil || cf.Variant != "v3" {
		t.Errorf("pulling linux/amd64/v3 gave %+v, %v", cf, err)
	}
}

func TestBuildPlatformsRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		spec func(s *Spec)
		want string
	}{
		{"a tree output", func(s *Spec) { s.Sink = &DirSink{Path: filepath.Join(dir, "out")} },
			"cannot hold several platforms (linux/amd64, linux/amd64/v3): write an image index"},
		{"one of the outputs", func(s *Spec) {
			s.Sink = Multi(&LayoutSink{Path: filepath.Join(dir, "oci")}, &ArchiveSink{Path: filepath.Join(dir, "a.tar")})
		}, "cannot hold several platforms"},
		{"twice the platform", func(s *Spec) {
			s.Platforms = append(s.Platforms, s.Platforms[0])
			s.Sink = &LayoutSink{Path: filepath.Join(dir, "oci")}
		}, "platform linux/amd64 has two roots"},
		{"a root too", func(s *Spec) { s.Root = hostRoot(t); s.Sink = &LayoutSink{Path: filepath.Join(dir, "oci")} },
			"both a root and platform roots"},
		{"a trace", func(s *Spec) {
			s.Workloads = []Workload{{Argv: []string{"/usr/bin/true"}}}
			s.Sink = &LayoutSink{Path: filepath.Join(dir, "oci")}
		}, "tracing a run with several platforms"},
		{"an SBOM file", func(s *Spec) {
			s.SBOM = SBOMSpec{Format: "spdx", File: filepath.Join(dir, "sbom.json")}
			s.Sink = &LayoutSink{Path: filepath.Join(dir, "oci")}
		}, "an SBOM file with several platforms"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := platformSpec(t, amd64Plain, amd64V3)
			c.spec(&s)
			_, err := Build(ctx, s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Build = %v, want an error with %q", err, c.want)
			}
			if ents, _ := os.ReadDir(dir); len(ents) > 0 {
				t.Errorf("a refused build wrote %v", ents)
			}
		})
	}
}

func TestBuildPlatformMismatch(t *testing.T) {
	s := platformSpec(t, amd64Plain, v1.Platform{OS: "linux", Architecture: "arm64"})
	s.Sink = &LayoutSink{Path: filepath.Join(t.TempDir(), "oci")}
	_, err := Build(context.Background(), s)
	want := "linux/arm64: /usr/bin/true is a linux/amd64 program, not linux/arm64"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Build = %v, want an error with %q", err, want)
	}
}

// A dynamically-linked program from outside a directory root gets its closure from the root, found from
// where it is put in the image.
func TestBuildHostProgramOutsideRoot(t *testing.T) {
	build := fixtureBuild(t)
	rootDir := filepath.Join(build, "ldcache/musl")
	data, err := os.ReadFile(filepath.Join(rootDir, "usr/bin/prog"))
	if err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(t.TempDir(), "svc")
	if err := os.WriteFile(prog, data, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.OpenDir(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	out := filepath.Join(t.TempDir(), "oci")
	res, err := Build(context.Background(), Spec{Root: root, Adds: []Add{{Src: prog, Dest: "/app/svc"}}, Sink: &LayoutSink{Path: out}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/app/svc", "/lib/ld-musl-x86_64.so.1", "/opt/musl/lib/libmp.so.1"} {
		if res.Tree.Get(want) == nil {
			t.Errorf("%s is not in the image", want)
		}
	}
	if res.Tree.Get("/usr/bin/prog") != nil {
		t.Error("the root's own /usr/bin/prog is in the image: only the host program was asked for")
	}
	p, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/app/svc"}) {
		t.Errorf("entrypoint %v, want the added program, /app/svc", cf.Config.Entrypoint)
	}
}
