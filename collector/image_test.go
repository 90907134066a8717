package collector

import (
	"archive/tar"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/scratchpack/scratchpack/collector/rootfs"
)

const hostContent = "copied from the host\n"

// testTree is a small tree with generated files, a sticky 1777 directory, a setuid file, an empty file, a
// symlink and a file copied from a host file under dir.
func testTree(t *testing.T, dir string) *Tree {
	t.Helper()
	src := filepath.Join(dir, "hostfile")
	if err := os.WriteFile(src, []byte(hostContent), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := NewTree()
	for _, e := range []Entry{
		{Path: "/bin/hello", Kind: KindFile, Mode: 0o755, Data: []byte("#!/hello\n")},
		{Path: "/bin/sh", Kind: KindSymlink, Target: "hello"},
		{Path: "/bin/su", Kind: KindFile, Mode: 0o755 | fs.ModeSetuid, Data: []byte("su")},
		{Path: "/etc/hostname", Kind: KindFile, Mode: 0o644, Source: hostSource(t, src)},
		{Path: "/tmp", Kind: KindDir, Mode: 0o777 | fs.ModeSticky},
		{Path: "/usr/lib/libempty.so", Kind: KindFile, Mode: 0o644},
	} {
		if err := tr.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// layerEntry is what a tar entry of a layer holds.
type layerEntry struct {
	Name     string
	Type     byte
	Mode     int64
	Content  string
	Linkname string
}

// wantLayer is testTree's tar form, in order.
var wantLayer = []layerEntry{
	{Name: "bin/", Type: tar.TypeDir, Mode: 0o755},
	{Name: "bin/hello", Type: tar.TypeReg, Mode: 0o755, Content: "#!/hello\n"},
	{Name: "bin/sh", Type: tar.TypeSymlink, Mode: 0o777, Linkname: "hello"},
	{Name: "bin/su", Type: tar.TypeReg, Mode: 0o4755, Content: "su"},
	{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
	{Name: "etc/hostname", Type: tar.TypeReg, Mode: 0o644, Content: hostContent},
	{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
	{Name: "usr/", Type: tar.TypeDir, Mode: 0o755},
	{Name: "usr/lib/", Type: tar.TypeDir, Mode: 0o755},
	{Name: "usr/lib/libempty.so", Type: tar.TypeReg, Mode: 0o644},
}

// readLayer reads a layer's entries back, checking that every one is owned by 0:0, unnamed, and has mtime.
func readLayer(t *testing.T, l v1.Layer, mtime time.Time) []layerEntry {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []layerEntry
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d (%q:%q), want 0:0 unnamed", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(mtime) {
			t.Errorf("%s: mtime %s, want %s", h.Name, h.ModTime.UTC(), mtime.UTC())
		}
		got = append(got, layerEntry{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, Content: string(b), Linkname: h.Linkname})
	}
	return got
}

var amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}

func mustBuild(t *testing.T, tr *Tree, cfg ImageConfig) v1.Image {
	t.Helper()
	img, err := BuildImage(context.Background(), tr, cfg)
	if err != nil {
		t.Fatalf("BuildImage: %v", err)
	}
	validateImage(t, img)
	return img
}

// validateImage runs validate.Image. That reads layers as gzip only, so an image with zstd layers gets
// validate.Fast and each layer is checked here instead: digest, size and diff ID against its bytes, as
// go-containerregistry's tarball package (which knows zstd) reads them again.
func validateImage(t *testing.T, img v1.Image) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var zstd []v1.Layer
	for _, l := range layers {
		if mt, err := l.MediaType(); err != nil {
			t.Fatal(err)
		} else if mt == types.OCILayerZStd {
			zstd = append(zstd, l)
		}
	}
	if len(zstd) == 0 {
		if err := validate.Image(img); err != nil {
			t.Fatalf("validate.Image: %v", err)
		}
		return
	}
	if err := validate.Image(img, validate.Fast); err != nil {
		t.Fatalf("validate.Image(Fast): %v", err)
	}
	for _, l := range zstd {
		again, err := tarball.LayerFromOpener(l.Compressed)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []func(v1.Layer) (any, error){
			func(l v1.Layer) (any, error) { return l.Digest() },
			func(l v1.Layer) (any, error) { return l.DiffID() },
			func(l v1.Layer) (any, error) { return l.Size() },
		} {
			want, err1 := f(l)
			got, err2 := f(again)
			if err1 != nil || err2 != nil || want != got {
				t.Fatalf("zstd layer: %v (%v) from its methods, %v (%v) from its bytes", want, err1, got, err2)
			}
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := v1.SHA256(rc)
		rc.Close()
		if want, _ := l.DiffID(); err != nil || h != want {
			t.Fatalf("zstd layer: SHA256(Uncompressed()) = %s, %v; want the diff ID %s", h, err, want)
		}
	}
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBuildImage(t *testing.T) {
	created := time.Unix(1700000000, 0)
	cfg := ImageConfig{
		Entrypoint:  []string{"/bin/hello"},
		Cmd:         []string{"--greet", "world"},
		Env:         []string{"PATH=/bin", "LANG=C.UTF-8"},
		User:        "65534:65534",
		WorkingDir:  "/tmp",
		Labels:      map[string]string{"org.opencontainers.image.title": "hello", "b": "2"},
		Annotations: map[string]string{"org.opencontainers.image.source": "https://example.com/hello"},
		Platform:    v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
		Created:     created.In(time.FixedZone("UTC+2", 2*3600)), // the zone must not reach the config
	}
	for _, compression := range []string{"", "gzip", "zstd"} {
		t.Run("compression="+compression, func(t *testing.T) {
			cfg := cfg
			cfg.Compression = compression
			img := mustBuild(t, testTree(t, t.TempDir()), cfg)

			wantLayerType := types.OCILayer
			if compression == "zstd" {
				wantLayerType = types.OCILayerZStd
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Layers) != 1 {
				t.Fatalf("%d layers, want 1", len(m.Layers))
			}
			gotTypes := []types.MediaType{m.MediaType, m.Config.MediaType, m.Layers[0].MediaType}
			if diff := cmp.Diff([]types.MediaType{types.OCIManifestSchema1, types.OCIConfigJSON, wantLayerType}, gotTypes); diff != "" {
				t.Errorf("media types (manifest, config, layer) (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(cfg.Annotations, m.Annotations); diff != "" {
				t.Errorf("manifest annotations (-want +got):\n%s", diff)
			}

			raw, err := img.RawConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(raw), `"created":"2023-11-14T22:13:20Z"`) {
				t.Errorf("config does not hold the created time in UTC: %s", raw)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			wantConfig := v1.Config{
				Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, Env: cfg.Env, User: cfg.User, WorkingDir: cfg.WorkingDir,
				Labels: cfg.Labels,
			}
			if diff := cmp.Diff(wantConfig, cf.Config); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			gotPlatform := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
			if diff := cmp.Diff(cfg.Platform, gotPlatform); diff != "" {
				t.Errorf("platform (-want +got):\n%s", diff)
			}
			if !cf.Created.Equal(created) {
				t.Errorf("created %s, want %s", cf.Created.Time, created.UTC())
			}
			wantHistory := []v1.History{{Created: v1.Time{Time: created.UTC()}, CreatedBy: "scratchpack build"}}
			if diff := cmp.Diff(wantHistory, cf.History); diff != "" {
				t.Errorf("history (-want +got):\n%s", diff)
			}

			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantLayer, readLayer(t, layers[0], created)); diff != "" {
				t.Errorf("layer content (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildImageReproducible(t *testing.T) {
	base := ImageConfig{Platform: amd64, Entrypoint: []string{"/bin/hello"}}
	with := func(f func(*ImageConfig)) ImageConfig {
		c := base
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		a, b ImageConfig
		same bool
	}{
		{"same tree and config", base, base, true},
		{"zero Created is the Unix epoch", base, with(func(c *ImageConfig) { c.Created = time.Unix(0, 0) }), true},
		{"sub-second part of Created dropped", with(func(c *ImageConfig) { c.Created = time.Unix(1, 0) }),
			with(func(c *ImageConfig) { c.Created = time.Unix(1, 999) }), true},
		{"SOURCE_DATE_EPOCH changes the digest", base, with(func(c *ImageConfig) { c.Created = time.Unix(1700000000, 0) }), false},
		{"zstd twice", with(func(c *ImageConfig) { c.Compression = "zstd" }), with(func(c *ImageConfig) { c.Compression = "zstd" }), true},
		{"zstd is not gzip", base, with(func(c *ImageConfig) { c.Compression = "zstd" }), false},
		{"an annotation changes the digest", base, with(func(c *ImageConfig) { c.Annotations = map[string]string{"a": "b"} }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each build copies its host file from a different directory: host paths must not matter.
			a := mustDigest(t, mustBuild(t, testTree(t, t.TempDir()), tc.a))
			b := mustDigest(t, mustBuild(t, testTree(t, t.TempDir()), tc.b))
			if (a == b) != tc.same {
				t.Errorf("digests %s and %s: same = %v, want %v", a, b, a == b, tc.same)
			}
		})
	}
}

func TestBuildImageBase(t *testing.T) {
	rnd, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	base, err := mutate.Config(rnd, v1.Config{
		Env:    []string{"PATH=/usr/bin", "HOME=/root"},
		Cmd:    []string{"/bin/base"},
		Labels: map[string]string{"from": "base", "kept": "yes"},
		User:   "base",
	})
	if err != nil {
		t.Fatal(err)
	}
	baseLayers, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	baseCfg, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}

	img := mustBuild(t, testTree(t, t.TempDir()), ImageConfig{
		Base:       base,
		Platform:   amd64,
		Entrypoint: []string{"/bin/hello"},
		Env:        []string{"PATH=/bin", "LANG=C"},
		Labels:     map[string]string{"from": "scratchpack"},
	})

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 3 {
		t.Fatalf("%d layers, want the base's 2 and ours", len(layers))
	}
	for i, l := range baseLayers {
		want, _ := l.Digest()
		got, _ := layers[i].Digest()
		if got != want {
			t.Errorf("layer %d: digest %s, want the base's %s", i, got, want)
		}
	}
	if diff := cmp.Diff(wantLayer, readLayer(t, layers[2], time.Unix(0, 0))); diff != "" {
		t.Errorf("top layer (-want +got):\n%s", diff)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range m.Layers {
		if d.MediaType != types.OCILayer {
			t.Errorf("layer %d: media type %s, want %s (the base's Docker layers converted)", i, d.MediaType, types.OCILayer)
		}
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types %s, %s: want OCI", m.MediaType, m.Config.MediaType)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	wantConfig := v1.Config{
		Entrypoint: []string{"/bin/hello"}, // and no Cmd: the base's was for its own entrypoint
		Env:        []string{"PATH=/bin", "HOME=/root", "LANG=C"},
		Labels:     map[string]string{"from": "scratchpack", "kept": "yes"},
		User:       "base",
	}
	if diff := cmp.Diff(wantConfig, cf.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if n := len(cf.History); n != len(baseCfg.History)+1 || cf.History[n-1].CreatedBy != "scratchpack build" {
		t.Errorf("history %+v: want the base's %d entries then ours", cf.History, len(baseCfg.History))
	}
	if diff := cmp.Diff(append(baseCfg.RootFS.DiffIDs, mustDiffID(t, layers[2])), cf.RootFS.DiffIDs); diff != "" {
		t.Errorf("diff IDs (-want +got):\n%s", diff)
	}
}

func mustDiffID(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	d, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBuildImageErrors(t *testing.T) {
	armBase, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: "arm64", RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		t.Fatal(err)
	}
	missing := NewTree()
	if err := missing.Add(Entry{Path: "/f", Kind: KindFile, Mode: 0o644, Source: goneSource(t, t.TempDir(), "gone")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tree *Tree
		cfg  ImageConfig
		want string
	}{
		{"missing host file", missing, ImageConfig{Platform: amd64}, "gone"},
		{"unknown compression", nil, ImageConfig{Platform: amd64, Compression: "lz4"}, `layer compression "lz4"`},
		{"no platform", nil, ImageConfig{}, "platform is unset"},
		{"base of another platform", nil, ImageConfig{Platform: amd64, Base: armBase}, "the base image is linux/arm64 but the image is linux/amd64"},
		{"env without =", nil, ImageConfig{Platform: amd64, Env: []string{"PATH"}}, `environment variable "PATH"`},
		{"relative working dir", nil, ImageConfig{Platform: amd64, WorkingDir: "tmp"}, `working directory "tmp" is not absolute`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := tc.tree
			if tr == nil {
				tr = NewTree()
			}
			_, err := BuildImage(context.Background(), tr, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("BuildImage: error %v, want one containing %q", err, tc.want)
			}
		})
	}
	t.Run("base of the same arch without a variant", func(t *testing.T) {
		mustBuild(t, NewTree(), ImageConfig{Platform: v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, Base: armBase})
	})
	t.Run("platform from the base", func(t *testing.T) {
		cf, err := mustBuild(t, NewTree(), ImageConfig{Base: armBase}).ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != "arm64" {
			t.Errorf("platform %s/%s, want the base's linux/arm64", cf.OS, cf.Architecture)
		}
	})
}

func TestPlatformFor(t *testing.T) {
	const (
		le = elf.ELFDATA2LSB
		be = elf.ELFDATA2MSB
	)
	for _, tc := range []struct {
		name    string
		m       elf.Machine
		c       elf.Class
		d       elf.Data
		flags   uint32
		want    string // os/arch[/variant]
		wantErr string
	}{
		{"x86-64", elf.EM_X86_64, elf.ELFCLASS64, le, 0, "linux/amd64", ""},
		{"i386", elf.EM_386, elf.ELFCLASS32, le, 0, "linux/386", ""},
		{"aarch64", elf.EM_AARCH64, elf.ELFCLASS64, le, 0, "linux/arm64/v8", ""},
		{"armhf", elf.EM_ARM, elf.ELFCLASS32, le, 0x05000400, "linux/arm/v7", ""},
		{"armel", elf.EM_ARM, elf.ELFCLASS32, le, 0x05000200, "linux/arm/v5", ""},
		{"ppc64le", elf.EM_PPC64, elf.ELFCLASS64, le, 2, "linux/ppc64le", ""},
		{"ppc64", elf.EM_PPC64, elf.ELFCLASS64, be, 1, "linux/ppc64", ""},
		{"s390x", elf.EM_S390, elf.ELFCLASS64, be, 0, "linux/s390x", ""},
		{"riscv64", elf.EM_RISCV, elf.ELFCLASS64, le, 0x5, "linux/riscv64", ""},
		{"loong64", elf.EM_LOONGARCH, elf.ELFCLASS64, le, 0x43, "linux/loong64", ""},
		{"mips64el", elf.EM_MIPS, elf.ELFCLASS64, le, 0x80000007, "linux/mips64le", ""},
		{"mips64", elf.EM_MIPS, elf.ELFCLASS64, be, 0x80000007, "linux/mips64", ""},
		{"mipsel", elf.EM_MIPS, elf.ELFCLASS32, le, 0x70001007, "linux/mipsle", ""},
		{"mips n32", elf.EM_MIPS, elf.ELFCLASS32, le, 0x80000027, "", "EM_MIPS programs (ELFCLASS32, ELFDATA2LSB) have no OCI platform"},
		{"x32", elf.EM_X86_64, elf.ELFCLASS32, le, 0, "", "EM_X86_64 programs (ELFCLASS32"},
		{"big-endian arm", elf.EM_ARM, elf.ELFCLASS32, be, 0x05000400, "", "EM_ARM programs"},
		{"sparc", elf.EM_SPARCV9, elf.ELFCLASS64, be, 0, "", "EM_SPARCV9 programs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PlatformFor(tc.m, tc.c, tc.d, tc.flags)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("PlatformFor: %v, %v; want an error containing %q", p, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.String(); got != tc.want {
				t.Errorf("PlatformFor = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    v1.Platform
		wantErr bool
	}{
		{in: "linux/amd64", want: v1.Platform{OS: "linux", Architecture: "amd64"}},
		{in: "linux/arm/v7", want: v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{in: "linux/arm64/v8", want: v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{in: "", wantErr: true},
		{in: "linux", wantErr: true},
		{in: "linux/", wantErr: true},
		{in: "/amd64", wantErr: true},
		{in: "linux/arm/v7/extra", wantErr: true},
		{in: "linux//v7", wantErr: true},
		{in: "Linux/AMD64", wantErr: true},
		{in: "windows/amd64:10.0.17763", wantErr: true},
		{in: "linux/amd64 ", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePlatform(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParsePlatform(%q) = %v, %v; want error %v", tc.in, got, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParsePlatform(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestWriteOCILayout(t *testing.T) {
	img := mustBuild(t, testTree(t, t.TempDir()), ImageConfig{Platform: amd64, Entrypoint: []string{"/bin/hello"}})
	for _, tag := range []string{"v1.0", ""} {
		t.Run("tag="+tag, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layout")
			if err := WriteOCILayout(img, dir, tag, false); err != nil {
				t.Fatal(err)
			}
			idx, err := layout.ImageIndexFromPath(dir)
			if err != nil {
				t.Fatal(err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(im.Manifests) != 1 {
				t.Fatalf("index.json lists %d manifests, want 1", len(im.Manifests))
			}
			d := im.Manifests[0]
			if want := mustDigest(t, img); d.Digest != want {
				t.Errorf("index.json digest %s, want %s", d.Digest, want)
			}
			var wantAnn map[string]string
			if tag != "" {
				wantAnn = map[string]string{"org.opencontainers.image.ref.name": tag}
			}
			if diff := cmp.Diff(wantAnn, d.Annotations); diff != "" {
				t.Errorf("index.json annotations (-want +got):\n%s", diff)
			}
			if d.Platform == nil || d.Platform.String() != "linux/amd64" {
				t.Errorf("index.json platform %v, want linux/amd64", d.Platform)
			}
			back, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(back); err != nil {
				t.Errorf("validate.Image of the layout's image: %v", err)
			}
			if got := mustDigest(t, back); got != mustDigest(t, img) {
				t.Errorf("read back digest %s, want %s", got, mustDigest(t, img))
			}
			err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				st, err := os.Lstat(p)
				if err != nil {
					return err
				}
				want := fs.FileMode(0o644)
				if st.IsDir() {
					want = fs.ModeDir | 0o755
				}
				if st.Mode() != want {
					t.Errorf("%s: mode %v, want %v", p, st.Mode(), want)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			checkNoLeftovers(t, filepath.Dir(dir), "layout")
		})
	}
}

// checkNoLeftovers fails if dir holds anything but the names given.
func checkNoLeftovers(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if diff := cmp.Diff(names, got); diff != "" {
		t.Errorf("%s holds (-want +got):\n%s", dir, diff)
	}
}

func TestUmociUnpack(t *testing.T) {
	umoci, err := exec.LookPath("umoci")
	if err != nil {
		t.Skip("umoci is not installed")
	}
	created := time.Unix(1700000000, 0)
	img := mustBuild(t, testTree(t, t.TempDir()), ImageConfig{
		Platform: amd64, Entrypoint: []string{"/bin/hello"}, Env: []string{"PATH=/bin"}, Created: created,
	})
	work := t.TempDir()
	dir, bundle := filepath.Join(work, "layout"), filepath.Join(work, "bundle")
	if err := WriteOCILayout(img, dir, "latest", false); err != nil {
		t.Fatal(err)
	}
	args := []string{"unpack", "--image", dir + ":latest", bundle}
	if os.Geteuid() != 0 {
		args = append([]string{"--rootless"}, args...)
	}
	if out, err := exec.Command(umoci, args...).CombinedOutput(); err != nil {
		t.Fatalf("umoci %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	rootfs := filepath.Join(bundle, "rootfs")
	for _, tc := range []struct {
		path, content, link string
		mode                fs.FileMode
	}{
		{path: "bin", mode: fs.ModeDir | 0o755},
		{path: "bin/hello", mode: 0o755, content: "#!/hello\n"},
		{path: "bin/sh", mode: fs.ModeSymlink | 0o777, link: "hello"},
		{path: "bin/su", mode: fs.ModeSetuid | 0o755, content: "su"},
		{path: "etc/hostname", mode: 0o644, content: hostContent},
		{path: "tmp", mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{path: "usr/lib/libempty.so", mode: 0o644},
	} {
		p := filepath.Join(rootfs, tc.path)
		st, err := os.Lstat(p)
		if err != nil {
			t.Errorf("unpacked rootfs: %v", err)
			continue
		}
		if st.Mode() != tc.mode {
			t.Errorf("%s: mode %v, want %v", tc.path, st.Mode(), tc.mode)
		}
		switch {
		case tc.link != "":
			if got, err := os.Readlink(p); err != nil || got != tc.link {
				t.Errorf("%s: link %q, %v; want %q", tc.path, got, err, tc.link)
			}
		case st.Mode().IsRegular():
			if got, err := os.ReadFile(p); err != nil || string(got) != tc.content {
				t.Errorf("%s: content %q, %v; want %q", tc.path, got, err, tc.content)
			}
			if !st.ModTime().Equal(created) {
				t.Errorf("%s: mtime %s, want %s", tc.path, st.ModTime().UTC(), created.UTC())
			}
		}
	}
	// umoci turns the image config into the runtime spec.
	spec, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rs struct {
		Process struct {
			Args []string `json:"args"`
			Env  []string `json:"env"`
		} `json:"process"`
	}
	if err := json.Unmarshal(spec, &rs); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/bin/hello"}, rs.Process.Args); diff != "" {
		t.Errorf("runtime spec args (-want +got):\n%s", diff)
	}
	if !strings.Contains(strings.Join(rs.Process.Env, "\n"), "PATH=/bin") {
		t.Errorf("runtime spec env %q lacks PATH=/bin", rs.Process.Env)
	}
}

// TestWriteOutputRules checks the refuse / force / nothing-left-behind rules of both image writers.
func TestWriteOutputRules(t *testing.T) {
	img := mustBuild(t, testTree(t, t.TempDir()), ImageConfig{Platform: amd64})

	for _, w := range []struct {
		name    string
		write   func(img v1.Image, dest string, force bool) error
		isValid func(dest string) error // dest holds an image
	}{
		{"oci", func(img v1.Image, dest string, force bool) error { return WriteOCILayout(img, dest, "t", force) },
			func(dest string) error { _, err := layout.ImageIndexFromPath(dest); return err }},
		{"docker-archive", func(img v1.Image, dest string, force bool) error { return WriteDockerArchive(img, dest, "", force) },
			func(dest string) error { _, err := tarball.ImageFromPath(dest, nil); return err }},
	} {
		t.Run(w.name+"/existing non-empty is refused and untouched", func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			writeMarker(t, dest, w.name == "oci")
			err := w.write(img, dest, false)
			if !errors.Is(err, ErrExists) {
				t.Errorf("write over an existing output: %v, want ErrExists", err)
			}
			checkMarker(t, dest, w.name == "oci")
			checkNoLeftovers(t, parent, "out")
		})
		t.Run(w.name+"/force replaces", func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			writeMarker(t, dest, w.name == "oci")
			if err := w.write(img, dest, true); err != nil {
				t.Fatal(err)
			}
			if err := w.isValid(dest); err != nil {
				t.Errorf("forced output is not an image: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dest, "marker")); err == nil {
				t.Error("the old output's marker survived")
			}
			checkNoLeftovers(t, parent, "out")
		})
		for _, bad := range []struct{ name, parent string }{
			{"nonexistent parent", "missing/dir"},
			{"parent is a file", "file"},
		} {
			t.Run(w.name+"/"+bad.name, func(t *testing.T) {
				root := t.TempDir()
				if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := w.write(img, filepath.Join(root, bad.parent, "out"), false); err == nil {
					t.Error("no error")
				}
				checkNoLeftovers(t, root, "file")
			})
		}
		t.Run(w.name+"/failure leaves nothing", func(t *testing.T) {
			parent := t.TempDir()
			bad := brokenImage(t)
			if err := w.write(bad, filepath.Join(parent, "out"), false); err == nil {
				t.Fatal("writing an image whose layer fails: no error")
			}
			checkNoLeftovers(t, parent)
		})
		t.Run(w.name+"/failure under force keeps the old output", func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			writeMarker(t, dest, w.name == "oci")
			if err := w.write(brokenImage(t), dest, true); err == nil {
				t.Fatal("writing an image whose layer fails: no error")
			}
			checkMarker(t, dest, w.name == "oci")
			checkNoLeftovers(t, parent, "out")
		})
	}
}

func TestWriteOCILayoutIntoEmptyDir(t *testing.T) {
	img := mustBuild(t, testTree(t, t.TempDir()), ImageConfig{Platform: amd64})
	parent := t.TempDir()
	dest := filepath.Join(parent, "out")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteOCILayout(img, dest, "", false); err != nil {
		t.Fatalf("an empty directory is refused: %v", err)
	}
	if _, err := layout.ImageIndexFromPath(dest); err != nil {
		t.Error(err)
	}
	checkNoLeftovers(t, parent, "out")
}

// brokenImage is an image whose layer fails half-way through being read (as a disk or a registry can).
func brokenImage(t *testing.T) v1.Image {
	t.Helper()
	l, err := random.Layer(1<<16, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), failingLayer{l})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type failingLayer struct{ v1.Layer }

func (f failingLayer) Compressed() (io.ReadCloser, error) {
	rc, err := f.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, 1000), iotest.ErrReader(errors.New("disk on fire"))), rc}, nil
}

func writeMarker(t *testing.T, dest string, dir bool) {
	t.Helper()
	p := dest
	if dir {
		if err := os.Mkdir(dest, 0o755); err != nil {
			t.Fatal(err)
		}
		p = filepath.Join(dest, "marker")
	}
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func checkMarker(t *testing.T, dest string, dir bool) {
	t.Helper()
	p := dest
	if dir {
		p = filepath.Join(dest, "marker")
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "old" {
		t.Errorf("old output %s: %q, %v; want it untouched", p, b, err)
	}
}

func TestWriteDockerArchive(t *testing.T) {
	img := mustBuild(t, testTree(t, t.TempDir()), ImageConfig{
		Platform: amd64, Entrypoint: []string{"/bin/hello"}, Labels: map[string]string{"a": "b"},
		Created: time.Unix(1700000000, 0),
	})
	for _, tc := range []struct{ ref, wantTag string }{
		{"", "scratchpack:latest"},
		{"example.com/team/hello:v2", "example.com/team/hello:v2"},
		{"localhost:5000/hello", "localhost:5000/hello:latest"},
	} {
		t.Run("ref="+tc.ref, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "image.tar")
			if err := WriteDockerArchive(img, file, tc.ref, false); err != nil {
				t.Fatal(err)
			}
			tag, err := name.NewTag(tc.wantTag)
			if err != nil {
				t.Fatal(err)
			}
			back, err := tarball.ImageFromPath(file, &tag)
			if err != nil {
				t.Fatalf("reading the archive back as %s: %v", tag, err)
			}
			if err := validate.Image(back); err != nil {
				t.Errorf("validate.Image of the archive: %v", err)
			}
			wantCfg, _ := img.RawConfigFile()
			gotCfg, err := back.RawConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(wantCfg), string(gotCfg)); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			wantLayers, gotLayers := layerDigests(t, img), layerDigests(t, back)
			if diff := cmp.Diff(wantLayers, gotLayers); diff != "" {
				t.Errorf("layer digests (-want +got):\n%s", diff)
			}
			m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
			if err != nil {
				t.Fatal(err)
			}
			if len(m) != 1 || len(m[0].RepoTags) != 1 {
				t.Fatalf("manifest.json %+v: want one image with one tag", m)
			}
			if got, err := name.NewTag(m[0].RepoTags[0]); err != nil || got.String() != tag.String() {
				t.Errorf("RepoTags %q, want %s", m[0].RepoTags, tag)
			}
		})
	}
	t.Run("a digest is not a tag", func(t *testing.T) {
		err := WriteDockerArchive(img, filepath.Join(t.TempDir(), "x.tar"), "hello@sha256:"+strings.Repeat("0", 64), false)
		if err == nil {
			t.Error("no error")
		}
	})

	t.Run("skopeo inspect", func(t *testing.T) {
		skopeo, err := exec.LookPath("skopeo")
		if err != nil {
			t.Skip("skopeo is not installed")
		}
		file := filepath.Join(t.TempDir(), "image.tar")
		if err := WriteDockerArchive(img, file, "", false); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(skopeo, "inspect", "docker-archive:"+file).Output()
		if err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, stderrOf(err))
		}
		var got struct {
			Created      time.Time
			Architecture string
			Os           string
			Labels       map[string]string
			Layers       []string
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("skopeo inspect output: %v\n%s", err, out)
		}
		want := struct {
			Created      time.Time
			Architecture string
			Os           string
			Labels       map[string]string
			Layers       []string
		}{time.Unix(1700000000, 0).UTC(), "amd64", "linux", map[string]string{"a": "b"}, diffIDs(t, img)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("skopeo inspect (-want +got):\n%s", diff)
		}
	})
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// diffIDs lists the image's uncompressed layer digests: what skopeo reports for a docker archive, whose
// layers it reads uncompressed.
func diffIDs(t *testing.T, img v1.Image) []string {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range cf.RootFS.DiffIDs {
		out = append(out, d.String())
	}
	return out
}

func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.String())
	}
	return out
}

// newRegistry serves go-containerregistry's in-memory registry on l (a loopback port when nil) and
// returns its host:port.
func newRegistry(t *testing.T, l net.Listener) string {
	t.Helper()
	return serveRegistry(t, l, registry.New(registry.Logger(log.New(io.Discard, "", 0))))
}

func serveRegistry(t *testing.T, l net.Listener, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	if l != nil {
		srv.Listener.Close()
		srv.Listener = l
	}
	srv.Start()
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestPush(t *testing.T) {
	for _, tc := range []struct {
		name, host, compression string
	}{
		{"127.0.0.1", "127.0.0.1", "gzip"},
		{"localhost", "localhost", "gzip"},
		{"zstd", "127.0.0.1", "zstd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A registry per case: a blob the registry has already is not uploaded, and sends no progress.
			_, port, err := net.SplitHostPort(newRegistry(t, nil))
			if err != nil {
				t.Fatal(err)
			}
			tc.host = net.JoinHostPort(tc.host, port)
			img := mustBuild(t, testTree(t, t.TempDir()), ImageConfig{Platform: amd64, Compression: tc.compression})
			ref := tc.host + "/team/hello:" + tc.compression
			updates := make(chan v1.Update, 16)
			var got []v1.Update
			done := make(chan struct{})
			go func() {
				for u := range updates {
					got = append(got, u)
				}
				close(done)
			}()
			// insecure is false: a loopback registry is reached over plain HTTP anyway.
			d, err := Push(context.Background(), img, ref, false, updates)
			if err != nil {
				t.Fatal(err)
			}
			<-done // Push closed the channel
			if want := mustDigest(t, img); d != want {
				t.Errorf("Push returned %s, want the image digest %s", d, want)
			}
			if len(got) == 0 || got[len(got)-1].Complete != got[len(got)-1].Total || got[len(got)-1].Total == 0 {
				t.Errorf("progress updates %+v: want some, ending complete", got)
			}
			r, err := name.ParseReference(ref, name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			back, err := remote.Image(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := mustDigest(t, back); got != d {
				t.Errorf("pulled digest %s, want %s", got, d)
			}
			validateImage(t, back)
		})
	}
	t.Run("bad reference", func(t *testing.T) {
		img := mustBuild(t, NewTree(), ImageConfig{Platform: amd64})
		updates := make(chan v1.Update, 1)
		if _, err := Push(context.Background(), img, "Not A Reference", false, updates); err == nil {
			t.Error("no error")
		}
		if _, open := <-updates; open {
			t.Error("the progress channel is still open")
		}
	})
}

// TestLoadBase loads bases (and image roots) by reference through rootfs.LoadImage.
func TestLoadBase(t *testing.T) {
	ctx := context.Background()
	img := mustBuild(t, testTree(t, t.TempDir()), ImageConfig{Platform: amd64})
	want := mustDigest(t, img)

	dir := filepath.Join(t.TempDir(), "layout")
	if err := WriteOCILayout(img, dir, "base", false); err != nil {
		t.Fatal(err)
	}
	// two holds two images: one must be named.
	two := filepath.Join(t.TempDir(), "two")
	if err := WriteOCILayout(img, two, "one", false); err != nil {
		t.Fatal(err)
	}
	other := mustBuild(t, NewTree(), ImageConfig{Platform: amd64})
	if err := layout.Path(two).AppendImage(other, layout.WithAnnotations(map[string]string{refNameAnnotation: "other"})); err != nil {
		t.Fatal(err)
	}

	host := newRegistry(t, nil)
	if _, err := Push(ctx, img, host+"/base:1", false, nil); err != nil {
		t.Fatal(err)
	}
	// A multi-platform index whose arm64 image is listed without a variant.
	arm := mustBuild(t, NewTree(), ImageConfig{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}})
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &amd64}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	multi, err := name.ParseReference(host+"/multi:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(multi, idx); err != nil {
		t.Fatal(err)
	}
	arm64v8 := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}

	for _, tc := range []struct {
		name, spec string
		opts       []rootfs.LoadOption
		want       v1.Hash
		wantErr    string
	}{
		{name: "layout by tag", spec: "oci:" + dir + ":base", want: want},
		{name: "layout's only image", spec: "oci:" + dir, want: want},
		{name: "layout, one of two", spec: "oci:" + two + ":other", want: mustDigest(t, other)},
		{name: "layout, two unnamed", spec: "oci:" + two, wantErr: "2 images"},
		{name: "layout, wrong tag", spec: "oci:" + dir + ":nope", wantErr: `no image named "nope"`},
		{name: "layout missing", spec: "oci:" + filepath.Join(t.TempDir(), "none"), wantErr: "reading the OCI layout"},
		{name: "registry", spec: "docker://" + host + "/base:1", want: want},
		{name: "registry index by platform", spec: "docker://" + host + "/multi:1", opts: []rootfs.LoadOption{rootfs.WithPlatform(arm64v8)},
			want: mustDigest(t, arm)},
		{name: "registry index, default platform", spec: "docker://" + host + "/multi:1", want: mustDigest(t, other)},
		{name: "registry, missing tag", spec: "docker://" + host + "/base:2", wantErr: "pulling docker://"},
		{name: "unknown transport", spec: "dir:/x", wantErr: "want oci:PATH[:TAG], docker-archive:PATH[:REF] or docker://REF"},
		{name: "bad platform option", spec: "oci:" + dir, opts: []rootfs.LoadOption{rootfs.WithPlatform(v1.Platform{})}, wantErr: "want os/arch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rootfs.LoadImage(ctx, tc.spec, tc.opts...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadBase(%q): %v, want an error containing %q", tc.spec, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := mustDigest(t, got); d != tc.want {
				t.Errorf("LoadBase(%q) digest %s, want %s", tc.spec, d, tc.want)
			}
		})
	}

	t.Run("layout index by platform", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "multi")
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{refNameAnnotation: "multi"})); err != nil {
			t.Fatal(err)
		}
		got, err := rootfs.LoadImage(ctx, "oci:"+dir+":multi", rootfs.WithPlatform(arm64v8))
		if err != nil {
			t.Fatal(err)
		}
		if d := mustDigest(t, got); d != mustDigest(t, arm) {
			t.Errorf("digest %s, want the arm64 image's %s", d, mustDigest(t, arm))
		}
		// Without a platform, the host's is picked, as from a registry index.
		got, err = rootfs.LoadImage(ctx, "oci:"+dir+":multi")
		if err != nil {
			t.Fatal(err)
		}
		if d := mustDigest(t, got); d != mustDigest(t, other) {
			t.Errorf("an index without a platform: digest %s, want the amd64 image's %s", d, mustDigest(t, other))
		}
	})
}

// TestPushMountsBaseLayers pushes an image built on a registry base (Docker media types, so its layers are
// re-typed as OCI) to another repository of that registry: the base layers are mounted, not uploaded again.
func TestPushMountsBaseLayers(t *testing.T) {
	ctx := context.Background()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var mu sync.Mutex
	var requests []string
	host := serveRegistry(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		// The in-memory registry keeps blobs for all repositories together; a real one answers for app alone.
		if r.Method == http.MethodHead && strings.HasPrefix(r.URL.Path, "/v2/app/blobs/") {
			http.NotFound(w, r)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	rnd, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	baseRef, err := name.ParseReference(host+"/base:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(baseRef, rnd); err != nil {
		t.Fatal(err)
	}
	base, err := rootfs.LoadImage(ctx, "docker://"+host+"/base:1")
	if err != nil {
		t.Fatal(err)
	}
	img := mustBuild(t, testTree(t, t.TempDir()), ImageConfig{Platform: amd64, Base: base})
	mu.Lock()
	requests = nil
	mu.Unlock()
	if _, err := Push(ctx, img, host+"/app:1", false, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The in-memory registry does not implement mounting (it answers 202 and the layer is uploaded): what
	// matters here is that go-containerregistry asks, which it does only for a remote.MountableLayer.
	for _, d := range layerDigests(t, rnd) {
		want := "POST /v2/app/blobs/uploads/?from=base&mount=" + url.QueryEscape(d) + "&origin="
		if !slices.ContainsFunc(requests, func(r string) bool { return strings.HasPrefix(r, want) }) {
			t.Errorf("base layer %s: no mount request from base; requests:\n%s", d, strings.Join(requests, "\n"))
		}
	}
}
