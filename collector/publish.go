package collector

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/scratchpack/scratchpack/internal/registry"
)

// WriteOCILayout writes img as an OCI image layout at dir, its index.json naming it tag (the
// org.opencontainers.image.ref.name annotation) when tag is not "" and carrying its platform. dir is written
// beside itself and renamed into place (see replaceAtomically): an existing non-empty dir is refused unless
// force, and a failure leaves nothing behind. Directories are 0755 and files 0644 whatever the umask.
func WriteOCILayout(img v1.Image, dir, tag string, force bool) error {
	opts := layoutTag(tag)
	if cf, err := img.ConfigFile(); err == nil && cf.Architecture != "" {
		opts = append(opts, layout.WithPlatform(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}))
	}
	return writeLayout(dir, force, func(p layout.Path) error { return p.AppendImage(img, opts...) })
}

// WriteOCIIndexLayout writes an image index as an OCI image layout at dir: index.json names the index
// (tagged tag when not ""), whose children are in the layout's blobs. It replaces dir as WriteOCILayout does.
func WriteOCIIndexLayout(idx v1.ImageIndex, dir, tag string, force bool) error {
	return writeLayout(dir, force, func(p layout.Path) error { return p.AppendIndex(idx, layoutTag(tag)...) })
}

func layoutTag(tag string) []layout.Option {
	if tag == "" {
		return nil
	}
	return []layout.Option{layout.WithAnnotations(map[string]string{refNameAnnotation: tag})}
}

// writeLayout makes an empty layout beside dir, lets add fill it, and renames it into place.
func writeLayout(dir string, force bool, add func(layout.Path) error) error {
	return replaceAtomically(dir, force, func(tmp string) error {
		p, err := layout.Write(tmp, empty.Index)
		if err == nil {
			err = add(p)
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

// normalizeModes gives every file of a written tree 0644 and every directory 0755, less the umask (as the
// tar and cpio outputs get it from open(2)): independent of how go-containerregistry created each one, and
// never more open than the user asked for (an added 0600 secret must not become world-readable on disk).
func normalizeModes(root string) error {
	umask := processUmask()
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode&^umask)
	})
}

// processUmask reads this process's umask from /proc/self/status (setting and restoring it with umask(2)
// would race with files other goroutines create); 022 when it cannot be read.
func processUmask() fs.FileMode {
	data, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return fs.FileMode(n) & fs.ModePerm
				}
			}
		}
	}
	return 0o022
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
// crane find them, without running a credential helper), and returns the pushed manifest's digest. Plain HTTP is used only when insecure, or for
// a loopback registry (localhost, 127.0.0.0/8, ::1); otherwise every request, redirects and token fetches
// included, must be HTTPS. progress, if not nil, receives updates and is closed when the push ends.
func Push(ctx context.Context, img v1.Image, ref string, insecure bool, progress chan<- v1.Update) (v1.Hash, error) {
	return push(ctx, img, ref, insecure, progress, 0, false, nil)
}

// push is Push with a bound on each request (0: registry.DefaultRequestTimeout), and the Docker config's
// credential helpers when helpers.
func push(ctx context.Context, img v1.Image, ref string, insecure bool, progress chan<- v1.Update, timeout time.Duration, helpers bool, cache *LayerCache) (v1.Hash, error) {
	ropts := []registry.Option{registry.WithCredentialHelpers(helpers)}
	if timeout > 0 {
		ropts = append(ropts, registry.WithRequestTimeout(timeout))
	}
	r, opts, err := registry.Ref(ctx, ref, insecure, ropts...)
	if err != nil {
		if progress != nil {
			close(progress) // as remote.Write does when it ends
		}
		return v1.Hash{}, err
	}
	if progress != nil {
		opts = append(opts, remote.WithProgress(progress))
	}
	var u uploads
	pushed := img
	if cache != nil {
		pushed = cache.mountable(img, r.Context())
	}
	if err := remote.Write(r, trackedImage{pushed, &u}, opts...); err != nil {
		if sending := u.inFlight(); sending != "" {
			return v1.Hash{}, fmt.Errorf("pushing %s, while sending %s: %w", r, sending, err)
		}
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", r, err)
	}
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", r, err)
	}
	if cache != nil {
		cache.recordPushed(img, r.Context())
	}
	return d, nil
}

// pushIndex pushes an image index and its children to ref, as push does an image.
func pushIndex(ctx context.Context, idx v1.ImageIndex, ref string, insecure bool, progress chan<- v1.Update, timeout time.Duration, helpers bool) (v1.Hash, error) {
	ropts := []registry.Option{registry.WithCredentialHelpers(helpers)}
	if timeout > 0 {
		ropts = append(ropts, registry.WithRequestTimeout(timeout))
	}
	r, opts, err := registry.Ref(ctx, ref, insecure, ropts...)
	if err != nil {
		if progress != nil {
			close(progress)
		}
		return v1.Hash{}, err
	}
	if progress != nil {
		opts = append(opts, remote.WithProgress(progress))
	}
	if err := remote.WriteIndex(r, idx, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", r, err)
	}
	return idx.Digest()
}
