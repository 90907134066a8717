package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// WriteOCILayout writes img as an OCI image layout at dir, its index.json naming it tag (the
// org.opencontainers.image.ref.name annotation) when tag is not "" and carrying its platform. dir is written
// beside itself and renamed into place (see replaceAtomically): an existing non-empty dir is refused unless
// force, and a failure leaves nothing behind. Directories are 0755 and files 0644 whatever the umask.
func WriteOCILayout(img v1.Image, dir, tag string, force bool) error {
	var opts []layout.Option
	if tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{refNameAnnotation: tag}))
	}
	if cf, err := img.ConfigFile(); err == nil && cf.Architecture != "" {
		opts = append(opts, layout.WithPlatform(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}))
	}
	return replaceAtomically(dir, force, func(tmp string) error {
		p, err := layout.Write(tmp, empty.Index)
		if err == nil {
			err = p.AppendImage(img, opts...)
		}
		if err == nil {
			err = normalizeModes(tmp)
		}
		if err != nil {
			return fmt.Errorf("writing the OCI layout %s: %w", dir, err)
		}
		return nil
	})
}

// normalizeModes makes a written tree's modes independent of the umask and of how each file was created.
func normalizeModes(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	})
}

// DefaultArchiveRef is the name WriteDockerArchive gives the image when none is given.
const DefaultArchiveRef = "scratchpack:latest"

// WriteDockerArchive writes img as a `docker load` tarball at file, tagged ref (DefaultArchiveRef when ""),
// with the same rules as WriteOCILayout for an existing file and for failures.
func WriteDockerArchive(img v1.Image, file, ref string, force bool) error {
	if ref == "" {
		ref = DefaultArchiveRef
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w (docker load needs a name:tag)", ref, err)
	}
	return writeFileAtomically(file, force, func(w io.Writer) error {
		if err := tarball.Write(tag, img, w); err != nil {
			return fmt.Errorf("writing the docker archive %s: %w", file, err)
		}
		return nil
	})
}

// Push pushes img to ref ("host[:port]/repo:tag"), with the credentials of the Docker config (as docker and
// crane find them), and returns the pushed manifest's digest. Plain HTTP is used only when insecure, or for
// a loopback registry (localhost, 127.0.0.0/8, ::1); otherwise every request, redirects and token fetches
// included, must be HTTPS. progress, if not nil, receives updates and is closed when the push ends.
func Push(ctx context.Context, img v1.Image, ref string, insecure bool, progress chan<- v1.Update) (v1.Hash, error) {
	r, opts, err := registryRef(ctx, ref, insecure)
	if err != nil {
		if progress != nil {
			close(progress) // as remote.Write does when it ends
		}
		return v1.Hash{}, err
	}
	if progress != nil {
		opts = append(opts, remote.WithProgress(progress))
	}
	if err := remote.Write(r, img, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", r, err)
	}
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", r, err)
	}
	return d, nil
}

// registryRef parses a registry reference and the remote options that reach it under the insecure rule.
func registryRef(ctx context.Context, ref string, insecure bool) (name.Reference, []remote.Option, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, nil, fmt.Errorf("image reference %q: %w", ref, err)
	}
	loopback := isLoopback(r.Context().RegistryStr())
	if insecure || loopback {
		if r, err = name.ParseReference(ref, name.Insecure); err != nil {
			return nil, nil, fmt.Errorf("image reference %q: %w", ref, err)
		}
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	if !insecure && !loopback {
		// go-containerregistry would also fall back to HTTP for private (RFC 1918) and *.localhost hosts.
		opts = append(opts, remote.WithTransport(httpsOnly{remote.DefaultTransport}))
	}
	return r, opts, nil
}

// isLoopback reports whether a registry host[:port] is this machine.
func isLoopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpsOnly refuses plain-HTTP requests.
type httpsOnly struct{ next http.RoundTripper }

func (h httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		return nil, fmt.Errorf("refusing %s %s: not HTTPS (pass --insecure to allow plain HTTP)", req.Method, req.URL.Redacted())
	}
	return h.next.RoundTrip(req)
}

// BaseOption configures LoadBase.
type BaseOption func(*baseOptions) error

type baseOptions struct {
	platform *v1.Platform
}

// WithBasePlatform picks the image of this platform when the base is a multi-platform index (without it, a
// registry index resolves to linux/amd64 and a layout index must hold a single image).
func WithBasePlatform(p v1.Platform) BaseOption {
	return func(o *baseOptions) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("base platform %q: want os/arch", p.String())
		}
		o.platform = &p
		return nil
	}
}

// LoadBase loads a base image: "oci:PATH[:TAG]" from an OCI layout (the image whose
// org.opencontainers.image.ref.name is TAG, or the only one), or "docker://REF" from a registry (plain HTTP
// under the same rule as Push).
func LoadBase(ctx context.Context, spec string, insecure bool, opts ...BaseOption) (v1.Image, error) {
	var o baseOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if ref, ok := strings.CutPrefix(spec, "docker://"); ok {
		r, ropts, err := registryRef(ctx, ref, insecure)
		if err != nil {
			return nil, fmt.Errorf("base %s: %w", spec, err)
		}
		if o.platform != nil {
			ropts = append(ropts, remote.WithPlatform(platformQuery(*o.platform)))
		}
		img, err := remote.Image(r, ropts...)
		if err != nil {
			return nil, fmt.Errorf("pulling base %s: %w", spec, err)
		}
		return img, nil
	}
	if rest, ok := strings.CutPrefix(spec, "oci:"); ok {
		dir, tag, _ := strings.Cut(rest, ":") // as in skopeo and ParseDest: the path ends at the first ':'
		img, err := layoutImage(dir, tag, o.platform)
		if err != nil {
			return nil, fmt.Errorf("base %s: %w", spec, err)
		}
		return img, nil
	}
	return nil, fmt.Errorf("base %q: want oci:PATH[:TAG] or docker://REF", spec)
}

// platformQuery is the platform to look for in an index: arm64 images are often listed without a variant.
func platformQuery(p v1.Platform) v1.Platform {
	q := v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
	if q.Architecture == "arm64" && q.Variant == "v8" {
		q.Variant = ""
	}
	return q
}

// layoutImage finds the image named tag ("" for the only one) in the OCI layout at dir, going into a
// multi-platform index by platform.
func layoutImage(dir, tag string, platform *v1.Platform) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the OCI layout: %w", err)
	}
	for depth := 0; depth < 4; depth++ {
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("reading the OCI layout's index: %w", err)
		}
		var found []v1.Descriptor
		var names []string
		for _, d := range im.Manifests {
			if !d.MediaType.IsImage() && !d.MediaType.IsIndex() {
				continue
			}
			if n := d.Annotations[refNameAnnotation]; n != "" {
				names = append(names, n)
			}
			switch {
			case depth == 0 && tag != "":
				if d.Annotations[refNameAnnotation] != tag {
					continue
				}
			case platform != nil && d.Platform != nil:
				if !samePlatform(platformQuery(*d.Platform), platformQuery(*platform)) {
					continue
				}
			}
			found = append(found, d)
		}
		switch {
		case len(found) == 0 && depth == 0 && tag != "":
			return nil, fmt.Errorf("no image named %q (the layout has %q)", tag, names)
		case len(found) == 0:
			return nil, fmt.Errorf("no image for platform %s", platformName(platform))
		case len(found) > 1:
			return nil, fmt.Errorf("%d images (named %q) match: name one (oci:PATH:TAG) or give the platform", len(found), names)
		}
		if found[0].MediaType.IsImage() {
			return idx.Image(found[0].Digest)
		}
		if idx, err = idx.ImageIndex(found[0].Digest); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("indexes nested too deep")
}

func platformName(p *v1.Platform) string {
	if p == nil {
		return "(none given)"
	}
	return p.String()
}
