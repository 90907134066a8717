package rootfs

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// platformImage is a one-layer image whose configuration is for p and whose etc/platform says so.
func platformImage(t *testing.T, p v1.Platform) v1.Image {
	t.Helper()
	img := imageOf(t, layerOf(t, file("etc/platform", p.String())))
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

func configName(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestLoadImage(t *testing.T) {
	ctx := context.Background()
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64"} // listed without a variant, as often
	arm64v8 := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	s390x := v1.Platform{OS: "linux", Architecture: "s390x"}
	amd, arm := platformImage(t, amd64), platformImage(t, arm64)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &amd64}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &arm64}},
	)
	named := func(n string) layout.Option {
		return layout.WithAnnotations(map[string]string{refNameAnnotation: n})
	}

	// A layout with two tagged images and a tagged two-platform index.
	lay := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(lay, empty.Index)
	must(t, err)
	must(t, p.AppendImage(amd, named("amd"), layout.WithPlatform(amd64)))
	must(t, p.AppendImage(arm, named("arm"), layout.WithPlatform(arm64)))
	must(t, p.AppendIndex(idx, named("multi")))
	// A layout whose top level is a two-platform index, untagged.
	plat := filepath.Join(t.TempDir(), "platforms")
	p, err = layout.Write(plat, empty.Index)
	must(t, err)
	must(t, p.AppendImage(amd, layout.WithPlatform(amd64)))
	must(t, p.AppendImage(arm, layout.WithPlatform(arm64)))
	// A layout with one image, and nothing said of it.
	single := filepath.Join(t.TempDir(), "single")
	p, err = layout.Write(single, empty.Index)
	must(t, err)
	must(t, p.AppendImage(amd))

	// Docker archives: one image, and two.
	archive := filepath.Join(t.TempDir(), "one.tar")
	must(t, tarball.WriteToFile(archive, name.MustParseReference("example.com/app:1"), amd))
	archives := filepath.Join(t.TempDir(), "two.tar")
	must(t, tarball.MultiWriteToFile(archives, map[name.Tag]v1.Image{
		name.MustParseReference("example.com/app:amd").(name.Tag): amd,
		name.MustParseReference("example.com/app:arm").(name.Tag): arm,
	}))

	// A registry on this machine: plain HTTP without WithInsecure.
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(host + s)
		must(t, err)
		return r
	}
	must(t, remote.Write(ref("/app:amd"), amd))
	must(t, remote.WriteIndex(ref("/app:multi"), idx))

	// What this machine's platform picks from an index.
	var host64 v1.Image
	switch hostPlatform().Architecture {
	case "amd64":
		host64 = amd
	case "arm64":
		host64 = arm
	}

	tests := []struct {
		name, ref string
		opts      []LoadOption
		want      v1.Image
		wantErr   string
	}{
		{name: "layout by tag", ref: "oci:" + lay + ":amd", want: amd},
		{name: "layout by tag, another", ref: "oci:" + lay + ":arm", want: arm},
		{name: "layout index by platform", ref: "oci:" + lay + ":multi", opts: []LoadOption{WithPlatform(amd64)}, want: amd},
		{name: "arm64/v8 matches arm64", ref: "oci:" + lay + ":multi", opts: []LoadOption{WithPlatform(arm64v8)}, want: arm},
		{name: "layout index, this machine's platform", ref: "oci:" + lay + ":multi", want: host64},
		{name: "layout top-level platforms", ref: "oci:" + plat, opts: []LoadOption{WithPlatform(arm64)}, want: arm},
		{name: "layout's only image", ref: "oci:" + single, opts: []LoadOption{WithPlatform(amd64)}, want: amd},
		{
			name: "layout index, a platform it lacks", ref: "oci:" + lay + ":multi", opts: []LoadOption{WithPlatform(s390x)},
			wantErr: "no image for linux/s390x in oci:" + lay + ":multi; it has linux/amd64, linux/arm64",
		},
		{
			name: "layout, unknown tag", ref: "oci:" + lay + ":nope",
			wantErr: `no image named "nope" in oci:` + lay + `:nope (the layout has ["amd" "arm" "multi"])`,
		},
		{name: "layout, several untagged", ref: "oci:" + lay, opts: []LoadOption{WithPlatform(amd64)}, wantErr: "2 images"},
		{name: "layout, tagged image of another platform", ref: "oci:" + lay + ":amd", opts: []LoadOption{WithPlatform(arm64)},
			wantErr: "oci:" + lay + ":amd is an image for linux/amd64, not linux/arm64"},
		{name: "layout missing", ref: "oci:" + filepath.Join(t.TempDir(), "none"), wantErr: "reading the OCI layout oci:"},
		{name: "archive's only image", ref: "docker-archive:" + archive, want: amd},
		{name: "archive by tag", ref: "docker-archive:" + archives + ":example.com/app:arm", want: arm},
		{name: "archive, several untagged", ref: "docker-archive:" + archives,
			wantErr: `2 images (tagged ["example.com/app:amd" "example.com/app:arm"]) in docker-archive:` + archives},
		{name: "archive, unknown tag", ref: "docker-archive:" + archive + ":example.com/app:2",
			wantErr: `no image tagged "example.com/app:2" in docker-archive:` + archive + `:example.com/app:2 (the archive has ["example.com/app:1"])`},
		{name: "archive missing", ref: "docker-archive:" + filepath.Join(t.TempDir(), "none.tar"), wantErr: "reading the docker archive docker-archive:"},
		{name: "registry", ref: "docker://" + host + "/app:amd", want: amd},
		{name: "registry index by platform", ref: "docker://" + host + "/app:multi", opts: []LoadOption{WithPlatform(arm64v8)}, want: arm},
		{name: "registry index, a platform it lacks", ref: "docker://" + host + "/app:multi", opts: []LoadOption{WithPlatform(s390x)},
			wantErr: "no image for linux/s390x in docker://" + host + "/app:multi; it has linux/amd64, linux/arm64"},
		{name: "registry, missing tag", ref: "docker://" + host + "/app:2", wantErr: "pulling docker://" + host + "/app:2: "},
		{name: "registry, bad reference", ref: "docker://Not A Reference", wantErr: `pulling docker://Not A Reference: image reference "Not A Reference"`},
		{name: "unknown transport", ref: "dir:/x", wantErr: `image reference "dir:/x": want oci:PATH[:TAG], docker-archive:PATH[:REF] or docker://REF`},
		{name: "bad platform option", ref: "oci:" + single, opts: []LoadOption{WithPlatform(v1.Platform{OS: "linux"})}, wantErr: "want os/arch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == nil && tc.wantErr == "" {
				t.Skipf("no image in the test index for this machine's platform %s", hostPlatform().String())
			}
			got, err := LoadImage(ctx, tc.ref, tc.opts...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadImage(%q): %v, want an error containing %q", tc.ref, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g, w := configName(t, got), configName(t, tc.want); g != w {
				t.Errorf("LoadImage(%q) has config %s, want %s", tc.ref, g, w)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	lay := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(lay, empty.Index)
	must(t, err)
	must(t, p.AppendImage(platformImage(t, amd64), layout.WithAnnotations(map[string]string{refNameAnnotation: "1"})))
	archive := filepath.Join(t.TempDir(), "one.tar")
	must(t, tarball.WriteToFile(archive, name.MustParseReference("app:1"), platformImage(t, amd64)))
	dir := t.TempDir()
	must(t, writeFile(filepath.Join(dir, "etc/platform"), "host"))

	spool := t.TempDir()
	for _, tc := range []struct {
		spec, want string
		isImage    bool
	}{
		{"oci:" + lay + ":1", "linux/amd64", true},
		{"docker-archive:" + archive, "linux/amd64", true},
		{dir, "host", false},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			if got := IsImageRef(tc.spec); got != tc.isImage {
				t.Errorf("IsImageRef = %v, want %v", got, tc.isImage)
			}
			fsys, err := Open(ctx, tc.spec, WithPlatform(amd64), WithImageOptions(WithSpoolDir(spool)))
			if err != nil {
				t.Fatal(err)
			}
			defer fsys.Close()
			if fsys.String() != tc.spec {
				t.Errorf("String() = %q, want %q", fsys.String(), tc.spec)
			}
			data, err := fs.ReadFile(fsys, "etc/platform")
			if err != nil || string(data) != tc.want {
				t.Errorf("etc/platform: %q, %v; want %q", data, err, tc.want)
			}
			if _, isImage := fsys.(*Image); isImage != tc.isImage {
				t.Errorf("Open gave a %T", fsys)
			}
		})
	}
	if _, err := Open(ctx, "oci:"+lay+":2"); err == nil || !strings.Contains(err.Error(), `no image named "2"`) {
		t.Errorf("Open of a missing tag: %v", err)
	}
	if _, err := Open(ctx, filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Open of a missing directory: %v", err)
	}
}

func writeFile(p, content string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

// TestLoadRefusesFIFOs: a FIFO where a layout's index.json or a blob, or a docker archive, would be is refused
// at once, not opened (opening a FIFO for reading blocks forever).
func TestLoadRefusesFIFOs(t *testing.T) {
	dir := t.TempDir()
	layoutDir := filepath.Join(dir, "layout")
	if err := os.MkdirAll(layoutDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(layoutDir, "index.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "archive.tar")
	if err := syscall.Mkfifo(archive, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"oci:" + layoutDir, "docker-archive:" + archive} {
		done := make(chan error, 1)
		go func() { _, err := LoadImage(context.Background(), ref); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "named pipe") {
				t.Errorf("LoadImage(%s): %v, want a named-pipe error", ref, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("LoadImage(%s) did not return within 5 s", ref)
		}
	}
}

// TestLoadRefusesHugeMetadata: an OCI layout whose index.json or manifest blob is larger than 4 MiB (a
// descriptor may lie about the size; the file may not) is refused before it is read (issue 9 #6).
func TestLoadRefusesHugeMetadata(t *testing.T) {
	img := imageOf(t, layerOf(t, file("etc/x", "x")))
	for _, what := range []string{"index.json", "manifest"} {
		t.Run(what, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layout")
			p, err := layout.Write(dir, empty.Index)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.AppendImage(img); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(dir, "index.json")
			if what == "manifest" {
				d, err := img.Digest()
				if err != nil {
					t.Fatal(err)
				}
				target = filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
			}
			if err := os.Truncate(target, 6<<20); err != nil {
				t.Fatal(err)
			}
			_, err = LoadImage(context.Background(), "oci:"+dir)
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 4 MiB") {
				t.Errorf("LoadImage: %v, want ErrTooLarge", err)
			}
		})
	}
}

// TestLoadRefusesHugeArchiveManifest: a docker archive whose manifest.json is larger than 4 MiB is refused
// before it is read.
func TestLoadRefusesHugeArchiveManifest(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a.tar")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	const size = 6 << 20
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = LoadImage(context.Background(), "docker-archive:"+file)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "manifest.json is 6291456 bytes") {
		t.Errorf("LoadImage: %v, want ErrTooLarge naming manifest.json", err)
	}
}
