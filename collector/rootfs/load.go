package rootfs

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/scratchpack/scratchpack/internal/registry"
)

// refNameAnnotation names an image in an OCI layout's index.json (umoci's and skopeo's "oci:DIR:TAG").
const refNameAnnotation = "org.opencontainers.image.ref.name"

// Transports an image reference starts with, as skopeo spells them.
const (
	ociPrefix     = "oci:"
	archivePrefix = "docker-archive:"
	dockerPrefix  = "docker://"
)

// LoadOption configures LoadImage and Open.
type LoadOption func(*loadOptions) error

type loadOptions struct {
	platform *v1.Platform
	insecure bool
	timeout  time.Duration
	helpers  bool
	image    []ImageOption
}

// WithPlatform picks the image of this platform from a multi-platform index, and refuses an image whose
// configuration names another. Without it, an index resolves to this machine's platform.
func WithPlatform(p v1.Platform) LoadOption {
	return func(o *loadOptions) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("platform %q: want os/arch", p.String())
		}
		o.platform = &p
		return nil
	}
}

// WithCredentialHelpers lets a docker:// reference's credentials come from the Docker config's credsStore
// and credHelpers, which runs their docker-credential-NAME programs (off by default).
func WithCredentialHelpers(on bool) LoadOption {
	return func(o *loadOptions) error {
		o.helpers = on
		return nil
	}
}

// WithRequestTimeout bounds each registry request (0: the default, registry.DefaultRequestTimeout).
func WithRequestTimeout(d time.Duration) LoadOption {
	return func(o *loadOptions) error {
		o.timeout = d
		return nil
	}
}

// WithInsecure allows plain HTTP to any registry. Without it, only a loopback registry (localhost,
// 127.0.0.0/8, ::1) is reached over plain HTTP, and every other request, redirects and token fetches
// included, must be HTTPS.
func WithInsecure(insecure bool) LoadOption {
	return func(o *loadOptions) error {
		o.insecure = insecure
		return nil
	}
}

// WithImageOptions passes options to NewImage when Open opens an image.
func WithImageOptions(opts ...ImageOption) LoadOption {
	return func(o *loadOptions) error {
		o.image = append(o.image, opts...)
		return nil
	}
}

// IsImageRef reports whether spec names an image (oci:, docker-archive: or docker://) rather than a
// directory.
func IsImageRef(spec string) bool {
	return strings.HasPrefix(spec, ociPrefix) || strings.HasPrefix(spec, archivePrefix) ||
		strings.HasPrefix(spec, dockerPrefix)
}

// Open opens spec as a root: an image reference (see LoadImage) is read by NewImage, named spec; anything
// else is a directory of this machine (OpenDir).
func Open(ctx context.Context, spec string, opts ...LoadOption) (FS, error) {
	if !IsImageRef(spec) {
		return OpenDir(spec)
	}
	o, err := loadOpts(opts)
	if err != nil {
		return nil, err
	}
	img, err := loadImage(ctx, spec, o)
	if err != nil {
		return nil, err
	}
	return NewImage(img, spec, o.image...)
}

// LoadImage loads the image ref names:
//
//   - oci:PATH[:TAG]: from the OCI image layout at PATH, the image whose org.opencontainers.image.ref.name
//     is TAG, or the only one (PATH ends at the first ':', as in skopeo);
//   - docker-archive:PATH[:REF]: from a `docker save` tarball, the image tagged REF, or the only one;
//   - docker://REF: from a registry, with the credentials of the Docker config.
//
// A multi-platform index resolves to the platform of WithPlatform, or of this machine.
func LoadImage(ctx context.Context, ref string, opts ...LoadOption) (v1.Image, error) {
	o, err := loadOpts(opts)
	if err != nil {
		return nil, err
	}
	return loadImage(ctx, ref, o)
}

func loadOpts(opts []LoadOption) (loadOptions, error) {
	var o loadOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

func loadImage(ctx context.Context, ref string, o loadOptions) (v1.Image, error) {
	platform := hostPlatform()
	if o.platform != nil {
		platform = *o.platform
	}
	var img v1.Image
	var err error
	switch {
	case strings.HasPrefix(ref, dockerPrefix):
		img, err = remoteImage(ctx, ref, platform, o)
	case strings.HasPrefix(ref, ociPrefix):
		dir, tag, _ := strings.Cut(strings.TrimPrefix(ref, ociPrefix), ":")
		img, err = layoutImage(ref, dir, tag, platform)
	case strings.HasPrefix(ref, archivePrefix):
		file, tag, _ := strings.Cut(strings.TrimPrefix(ref, archivePrefix), ":")
		if err := onlyRegularFiles("the docker archive "+ref, file); err != nil {
			return nil, err
		}
		img, err = archiveImage(ref, file, tag)
	default:
		return nil, fmt.Errorf("image reference %q: want oci:PATH[:TAG], docker-archive:PATH[:REF] or docker://REF", ref)
	}
	if err != nil {
		return nil, err
	}
	if m, err := img.Manifest(); err == nil && m.Config.Size > MaxConfigSize {
		return nil, fmt.Errorf("reading %s: %w: its config is %d bytes, more than %d MiB", ref, ErrTooLarge, m.Config.Size, MaxConfigSize>>20)
	}
	if o.platform != nil {
		if err := checkPlatform(ref, img, *o.platform); err != nil {
			return nil, err
		}
	}
	return img, nil
}

// remoteDescriptor fetches what a docker:// reference names: an image's manifest or an index.
func remoteDescriptor(ctx context.Context, ref string, o loadOptions) (*remote.Descriptor, error) {
	opts := []registry.Option{registry.WithCredentialHelpers(o.helpers)}
	if o.timeout > 0 {
		opts = append(opts, registry.WithRequestTimeout(o.timeout))
	}
	r, ropts, err := registry.Ref(ctx, strings.TrimPrefix(ref, dockerPrefix), o.insecure, opts...)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return desc, nil
}

func remoteImage(ctx context.Context, ref string, platform v1.Platform, o loadOptions) (v1.Image, error) {
	desc, err := remoteDescriptor(ctx, ref, o)
	if err != nil {
		return nil, err
	}
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return nil, fmt.Errorf("pulling %s: %w", ref, err)
		}
		return img, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return pick(ref, idx, "", platform, "name one by digest")
}

// layoutImage finds the image named tag ("" for the only one) in the OCI layout at dir.
func layoutImage(ref, dir, tag string, platform v1.Platform) (v1.Image, error) {
	idx, err := openLayout(ref, dir)
	if err != nil {
		return nil, err
	}
	return pick(ref, idx, tag, platform, "name one (oci:PATH:TAG) or give the platform")
}

// openLayout reads the index of the OCI layout at dir, once its files are checked.
func openLayout(ref, dir string) (v1.ImageIndex, error) {
	if err := onlyRegularFiles("the OCI layout "+ref, dir); err != nil {
		return nil, err
	}
	// go-containerregistry reads a layout's index, manifests and config whole, whatever their descriptors
	// say: every file that can be one of those is checked first.
	if err := smallFiles(ref, dir); err != nil {
		return nil, err
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the OCI layout %s: %w", ref, err)
	}
	return idx, nil
}

// MaxManifestSize and MaxConfigSize bound what is read of an image's index, manifests and config (a 6 GB
// "manifest" must not be read into memory).
const (
	MaxManifestSize = 4 << 20
	MaxConfigSize   = 4 << 20
)

// smallFiles checks that a layout's index.json, and every blob its descriptors (and their manifests') name
// as an index, a manifest or a config, is at most MaxManifestSize bytes on disk, reading only such small
// files to find them.
func smallFiles(ref, dir string) error {
	check := func(p string) error {
		st, err := os.Stat(p)
		if err != nil {
			return nil // go-containerregistry says what is missing
		}
		if st.Size() > MaxManifestSize {
			return fmt.Errorf("reading the OCI layout %s: %w: %s is %d bytes, more than %d MiB", ref, ErrTooLarge, p, st.Size(), MaxManifestSize>>20)
		}
		return nil
	}
	if err := check(filepath.Join(dir, "index.json")); err != nil {
		return err
	}
	seen := map[string]bool{}
	var walk func(p string, depth int) error
	walk = func(p string, depth int) error {
		if seen[p] || depth > 8 {
			return nil
		}
		seen[p] = true
		if err := check(p); err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		var doc struct {
			Manifests []v1.Descriptor `json:"manifests"`
			Config    *v1.Descriptor  `json:"config"`
		}
		if json.Unmarshal(data, &doc) != nil {
			return nil
		}
		descs := doc.Manifests
		if doc.Config != nil {
			descs = append(descs, *doc.Config)
		}
		for _, d := range descs {
			if d.Digest.Algorithm == "" || strings.ContainsAny(d.Digest.Algorithm+d.Digest.Hex, "/.") {
				continue
			}
			blob := filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex)
			if d.MediaType.IsImage() || d.MediaType.IsIndex() {
				if err := walk(blob, depth+1); err != nil {
					return err
				}
			} else if doc.Config != nil && d.Digest == doc.Config.Digest {
				if err := check(blob); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(filepath.Join(dir, "index.json"), 0)
}

// pick chooses an image in an index: at the top, the one named tag when tag is not ""; then, going into
// nested indexes, the one of the platform (a descriptor without a platform matches any). hint says how to
// choose when several match.
func pick(ref string, idx v1.ImageIndex, tag string, platform v1.Platform, hint string) (v1.Image, error) {
	for depth := 0; depth < 4; depth++ {
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("reading the index of %s: %w", ref, err)
		}
		var found []v1.Descriptor
		var names, platforms []string
		for _, d := range im.Manifests {
			if !d.MediaType.IsImage() && !d.MediaType.IsIndex() {
				continue
			}
			if n := d.Annotations[refNameAnnotation]; n != "" {
				names = append(names, n)
			}
			if d.Platform != nil && !slices.Contains(platforms, d.Platform.String()) {
				platforms = append(platforms, d.Platform.String())
			}
			switch {
			case depth == 0 && tag != "":
				if d.Annotations[refNameAnnotation] != tag {
					continue
				}
			case d.Platform != nil:
				if !samePlatform(platformQuery(*d.Platform), platformQuery(platform)) {
					continue
				}
			}
			found = append(found, d)
		}
		switch {
		case len(found) == 0 && depth == 0 && tag != "":
			return nil, fmt.Errorf("no image named %q in %s (the layout has %q)", tag, ref, names)
		case len(found) == 0 && len(platforms) == 0:
			return nil, fmt.Errorf("no image in %s", ref)
		case len(found) == 0:
			return nil, fmt.Errorf("no image for %s in %s; it has %s", platform.String(), ref, strings.Join(platforms, ", "))
		case len(found) > 1:
			return nil, fmt.Errorf("%d images (named %q) match in %s: %s", len(found), names, ref, hint)
		}
		if found[0].Size > MaxManifestSize {
			return nil, fmt.Errorf("reading %s: %w: the manifest %s is %d bytes, more than %d MiB", ref, ErrTooLarge, found[0].Digest, found[0].Size, MaxManifestSize>>20)
		}
		if found[0].MediaType.IsImage() {
			img, err := idx.Image(found[0].Digest)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", ref, err)
			}
			return img, nil
		}
		if idx, err = idx.ImageIndex(found[0].Digest); err != nil {
			return nil, fmt.Errorf("reading %s: %w", ref, err)
		}
	}
	return nil, fmt.Errorf("reading %s: indexes nested too deep", ref)
}

// archiveImage finds the image tagged tag ("" for the only one) in the docker archive file.
func archiveImage(ref, file, tag string) (v1.Image, error) {
	if err := smallArchiveMetadata(ref, file); err != nil {
		return nil, err
	}
	opener := func() (io.ReadCloser, error) { return os.Open(file) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("reading the docker archive %s: %w", ref, err)
	}
	var tags []string
	for _, d := range m {
		tags = append(tags, d.RepoTags...)
	}
	var want *name.Tag
	if tag != "" {
		t, err := name.NewTag(tag)
		if err != nil {
			return nil, fmt.Errorf("image name %q in %s: %w", tag, ref, err)
		}
		found := false
		for _, s := range tags {
			if st, err := name.NewTag(s); err == nil && st.Name() == t.Name() {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("no image tagged %q in %s (the archive has %q)", tag, ref, tags)
		}
		want = &t
	} else if len(m) != 1 {
		return nil, fmt.Errorf("%d images (tagged %q) in %s: name one (docker-archive:PATH:REF)", len(m), tags, ref)
	}
	img, err := tarball.Image(opener, want)
	if err != nil {
		return nil, fmt.Errorf("reading the docker archive %s: %w", ref, err)
	}
	return img, nil
}

// checkPlatform refuses an image whose configuration names another platform than the one asked for.
func checkPlatform(ref string, img v1.Image, want v1.Platform) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading the configuration of %s: %w", ref, err)
	}
	if cf.OS == "" || cf.Architecture == "" {
		return nil
	}
	got := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	if !samePlatform(platformQuery(got), platformQuery(want)) {
		return fmt.Errorf("%s is an image for %s, not %s", ref, got.String(), want.String())
	}
	return nil
}

// hostPlatform is this machine's platform, as image indexes spell it.
func hostPlatform() v1.Platform {
	p := v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	switch runtime.GOARCH {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = "v" + goarm()
	}
	return p
}

// goarm is the GOARM this program was built for (7 when unknown).
func goarm() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" && s.Value != "" {
				v, _, _ := strings.Cut(s.Value, ",") // "7,softfloat"
				return v
			}
		}
	}
	return "7"
}

// platformQuery is the platform to look for in an index: arm64 images are often listed without a variant.
func platformQuery(p v1.Platform) v1.Platform {
	q := v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
	if q.Architecture == "arm64" && q.Variant == "v8" {
		q.Variant = ""
	}
	return q
}

// samePlatform compares OS and architecture, and the variants when both are given.
func samePlatform(a, b v1.Platform) bool {
	if a.OS != b.OS || a.Architecture != b.Architecture {
		return false
	}
	return a.Variant == "" || b.Variant == "" || a.Variant == b.Variant
}

// maxLayoutFiles bounds how many files of an OCI layout are checked before it is read.
const maxLayoutFiles = 1 << 20

// onlyRegularFiles refuses an OCI layout (a directory) or a docker archive (a file) that is, or holds, anything
// but directories and regular files: go-containerregistry opens what it reads without looking, and a FIFO
// blocks the open forever. Symbolic links are followed as go-containerregistry would follow them.
func onlyRegularFiles(what, p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	if !st.IsDir() {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("reading %s: %s is %s, not a regular file", what, p, kindOf(st.Mode()))
		}
		return nil
	}
	n := 0
	return filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading %s: %w", what, err)
		}
		if n++; n > maxLayoutFiles {
			return fmt.Errorf("reading %s: more than %d files", what, maxLayoutFiles)
		}
		if d.IsDir() {
			return nil
		}
		st, err := os.Stat(f)
		if err != nil {
			return fmt.Errorf("reading %s: %w", what, err)
		}
		if !st.Mode().IsRegular() && !st.IsDir() {
			return fmt.Errorf("reading %s: %s is %s, not a regular file", what, f, kindOf(st.Mode()))
		}
		return nil
	})
}

// smallArchiveMetadata checks that a docker archive's manifest.json and the JSON files beside it (the
// configs) are at most MaxManifestSize bytes: go-containerregistry reads them whole.
func smallArchiveMetadata(ref, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("reading the docker archive %s: %w", ref, err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return nil // go-containerregistry says what is wrong with it
		}
		if strings.HasSuffix(h.Name, ".json") && h.Size > MaxManifestSize {
			return fmt.Errorf("reading the docker archive %s: %w: %s is %d bytes, more than %d MiB", ref, ErrTooLarge, h.Name, h.Size, MaxManifestSize>>20)
		}
	}
}

// Platforms returns the platforms of a multi-platform image ref names (an index: a registry's, or the one a
// layout's tag or only entry names; a layout whose index.json lists one image per platform), in the index's
// order, and the index's digest; nil when ref names one image. Attestation manifests (unknown/unknown) are
// not platforms.
func Platforms(ctx context.Context, ref string, opts ...LoadOption) ([]v1.Platform, v1.Hash, error) {
	o, err := loadOpts(opts)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	switch {
	case strings.HasPrefix(ref, dockerPrefix):
		desc, err := remoteDescriptor(ctx, ref, o)
		if err != nil {
			return nil, v1.Hash{}, err
		}
		if !desc.MediaType.IsIndex() {
			return nil, v1.Hash{}, nil
		}
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("pulling %s: %w", ref, err)
		}
		return indexPlatforms(ref, idx)
	case strings.HasPrefix(ref, ociPrefix):
		dir, tag, _ := strings.Cut(strings.TrimPrefix(ref, ociPrefix), ":")
		idx, err := openLayout(ref, dir)
		if err != nil {
			return nil, v1.Hash{}, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("reading the OCI layout %s: %w", ref, err)
		}
		var named []v1.Descriptor
		for _, d := range im.Manifests {
			if tag == "" || d.Annotations[refNameAnnotation] == tag {
				named = append(named, d)
			}
		}
		if len(named) == 1 && named[0].MediaType.IsIndex() {
			sub, err := idx.ImageIndex(named[0].Digest)
			if err != nil {
				return nil, v1.Hash{}, fmt.Errorf("reading %s: %w", ref, err)
			}
			return indexPlatforms(ref, sub)
		}
		if tag == "" && len(named) > 1 {
			return indexPlatforms(ref, idx)
		}
		return nil, v1.Hash{}, nil
	}
	return nil, v1.Hash{}, nil
}

// indexPlatforms lists the distinct platforms of an index's image manifests; nil unless there are several.
func indexPlatforms(ref string, idx v1.ImageIndex) ([]v1.Platform, v1.Hash, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("reading the index of %s: %w", ref, err)
	}
	var out []v1.Platform
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() || d.Platform == nil || d.Platform.OS == "unknown" {
			continue
		}
		if !slices.ContainsFunc(out, func(p v1.Platform) bool { return p.Equals(*d.Platform) }) {
			out = append(out, *d.Platform)
		}
	}
	if len(out) < 2 {
		return nil, v1.Hash{}, nil
	}
	h, err := idx.Digest()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("reading the index of %s: %w", ref, err)
	}
	return out, h, nil
}
