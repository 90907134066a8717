package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sync/errgroup"

	"github.com/scratchpack/scratchpack/collector/rootfs"
)

// PlatformRoot is one platform of a multi-platform build: the root its image is built from, and what is
// added for that platform alone (a program cross-built for it).
type PlatformRoot struct {
	Platform v1.Platform
	Root     rootfs.FS
	Adds     []Add
}

// IndexArtifact is what an IndexSink writes: the image index and, in its order, each platform's artifact.
type IndexArtifact struct {
	Index    v1.ImageIndex
	Children []Artifact
}

// An IndexSink is a Sink that can also write an image index: an OCI layout whose index.json names the
// index, or a registry push of the index. The other outputs hold one root, and refuse several platforms.
type IndexSink interface {
	Sink
	// PublishIndex writes the index and every child (each child's SBOM attached to it as a referrer) and
	// returns the index's digest.
	PublishIndex(ctx context.Context, ix IndexArtifact) (string, error)
}

// ErrSeveralPlatforms is why an output that holds one root refuses a multi-platform build.
var ErrSeveralPlatforms = errors.New("write an image index (oci:PATH or docker://REF), or build one platform at a time")

// takesIndex reports whether every output of s can write an image index.
func takesIndex(s Sink) bool {
	if m, ok := s.(multiSink); ok {
		return !slices.ContainsFunc(m, func(s Sink) bool { return !takesIndex(s) })
	}
	_, ok := s.(IndexSink)
	return ok
}

func (m multiSink) PublishIndex(ctx context.Context, ix IndexArtifact) (string, error) {
	var out []string
	for _, s := range m {
		is, ok := s.(IndexSink)
		if !ok {
			return "", fmt.Errorf("%s cannot hold an image index", s)
		}
		r, err := is.PublishIndex(ctx, ix)
		if err != nil {
			return "", fmt.Errorf("%s: %w", s, err)
		}
		out = append(out, r)
	}
	return strings.Join(out, "\n"), nil
}

// checkPlatforms validates a multi-platform spec: distinct platforms, each with a root, and outputs that can
// hold them.
func (s Spec) checkPlatforms() error {
	if s.Root != nil {
		return errors.New("both a root and platform roots: give every root its platform")
	}
	seen := map[string]bool{}
	for _, pr := range s.Platforms {
		name := pr.Platform.String()
		if pr.Platform.OS == "" || pr.Platform.Architecture == "" {
			return fmt.Errorf("platform root %s: no os/arch", pr.Root)
		}
		if seen[platformKey(pr.Platform)] {
			return fmt.Errorf("platform %s has two roots", name)
		}
		seen[platformKey(pr.Platform)] = true
		for _, a := range pr.Adds {
			if _, err := cleanPath(a.Dest); err != nil {
				return fmt.Errorf("%s: adding %s: %w", name, a.Src, err)
			}
		}
	}
	if len(s.Platforms) < 2 {
		return nil
	}
	if len(s.Workloads) > 0 || len(s.TraceLogs) > 0 {
		return errors.New("tracing a run with several platforms: a traced run is of one root; build one platform at a time")
	}
	if s.SBOM.File != "" {
		return errors.New("an SBOM file with several platforms: each platform's SBOM is in its image and attached to it as a referrer; write the file for one platform at a time")
	}
	if s.Explain == nil && s.Sink != nil && !takesIndex(s.Sink) {
		names := platformNames(s.Platforms)
		slices.Sort(names)
		return fmt.Errorf("%s cannot hold several platforms (%s): %w", s.Sink, strings.Join(names, ", "), ErrSeveralPlatforms)
	}
	return nil
}

// platformKey identifies a platform: os, architecture and variant.
func platformKey(p v1.Platform) string {
	return p.OS + "/" + p.Architecture + "/" + p.Variant
}

func platformNames(prs []PlatformRoot) []string {
	var out []string
	for _, pr := range prs {
		out = append(out, pr.Platform.String())
	}
	return out
}

// forPlatform is the single-platform spec of one platform root: its root, the shared adds then its own,
// its platform in the image config, notes prefixed with the platform.
func (s Spec) forPlatform(pr PlatformRoot, many bool) Spec {
	c := s
	c.Platforms = nil
	c.Root = pr.Root
	c.Adds = append(slices.Clone(s.Adds), pr.Adds...)
	c.Image.Platform = pr.Platform
	c.declaredPlatform = true
	if many {
		log := s.Log
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		c.Log = slog.New(prefixHandler{log.Handler(), pr.Platform.String() + ": "})
	}
	return c
}

// buildPlatforms builds each platform root's image, concurrently, and publishes them as one image index
// (one platform: its image alone). Children are in os/architecture/variant order, so the same roots give the
// same index whatever order they were given in.
func buildPlatforms(ctx context.Context, s Spec) (*Result, error) {
	for _, pr := range s.Platforms {
		if pr.Root == nil {
			return nil, fmt.Errorf("platform %s has no root", pr.Platform)
		}
	}
	prs := slices.Clone(s.Platforms)
	slices.SortFunc(prs, func(a, b PlatformRoot) int { return cmp.Compare(platformKey(a.Platform), platformKey(b.Platform)) })
	if len(prs) == 1 {
		return Build(ctx, s.forPlatform(prs[0], false))
	}
	res := &Result{Children: make([]*Result, len(prs))}
	if s.Explain != nil {
		for i, pr := range prs {
			fmt.Fprintf(s.Explain, "# %s\n", pr.Platform)
			r, err := Build(ctx, s.forPlatform(pr, true))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", pr.Platform, err)
			}
			res.Children[i] = r
		}
		return res, nil
	}
	arts := make([]Artifact, len(prs))
	g, gctx := errgroup.WithContext(ctx)
	for i, pr := range prs {
		g.Go(func() error {
			c := s.forPlatform(pr, true)
			capture := &captureSink{spool: spoolDir(s.Sink)}
			c.Sink = capture
			r, err := Build(gctx, c)
			if err != nil {
				return fmt.Errorf("%s: %w", pr.Platform, err)
			}
			res.Children[i], arts[i] = r, capture.a
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, c := range res.Children {
		res.Notes = append(res.Notes, c.Notes...)
	}
	idx, err := imageIndex(prs, arts, s.Image.Annotations)
	if err != nil {
		return nil, err
	}
	is, ok := s.Sink.(IndexSink)
	if !ok {
		return nil, fmt.Errorf("%s cannot hold an image index", s.Sink)
	}
	if res.Output, err = is.PublishIndex(ctx, IndexArtifact{Index: idx, Children: arts}); err != nil {
		return nil, err
	}
	return res, nil
}

// imageIndex is the OCI image index of the children, each descriptor naming its platform.
func imageIndex(prs []PlatformRoot, arts []Artifact, annotations map[string]string) (v1.ImageIndex, error) {
	var adds []mutate.IndexAddendum
	for i, a := range arts {
		mt, err := a.Image.MediaType()
		if err != nil {
			return nil, err
		}
		p := prs[i].Platform
		adds = append(adds, mutate.IndexAddendum{Add: a.Image, Descriptor: v1.Descriptor{MediaType: mt, Platform: &p}})
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	if len(annotations) > 0 {
		idx = mutate.Annotations(idx, annotations).(v1.ImageIndex)
	}
	return idx, nil
}

// captureSink keeps a platform's artifact for the index instead of writing it.
type captureSink struct {
	spool string
	a     Artifact
}

func (c *captureSink) Check() error     { return nil }
func (c *captureSink) WantsImage() bool { return true }
func (c *captureSink) String() string   { return "index" }
func (c *captureSink) Publish(_ context.Context, a Artifact) (string, error) {
	c.a = a
	d, err := a.Image.Digest()
	return d.String(), err
}

// prefixHandler prefixes every message, as a platform's notes are told apart.
type prefixHandler struct {
	slog.Handler
	prefix string
}

func (h prefixHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Message = h.prefix + r.Message
	return h.Handler.Handle(ctx, r)
}

func (h prefixHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return prefixHandler{h.Handler.WithAttrs(attrs), h.prefix}
}

func (h prefixHandler) WithGroup(name string) slog.Handler {
	return prefixHandler{h.Handler.WithGroup(name), h.prefix}
}

// checkPlatformMatch fails when a platform root's first program is not of that platform's architecture.
func (p *Planner) checkPlatformMatch(want v1.Platform) error {
	got, err := p.platform()
	if err != nil {
		return nil // nothing to tell it by
	}
	if got.OS != want.OS || got.Architecture != want.Architecture {
		return fmt.Errorf("%s is a %s program, not %s: is the root %s the %s one?", p.programPaths[0], got, want, p.root, want)
	}
	return nil
}

// hostPrograms finds the dynamically-linked ELF files among the adds that lie outside the root (a directory
// elsewhere, or any file when the root is an image), by image path: the planner shows them in the root
// there (WithHostPrograms), so that their closures resolve inside the root from where they will be. An add
// that cannot be read is left to AddHostPath to report.
func hostPrograms(root rootfs.FS, adds []Add) map[string]string {
	dir := hostDir(root)
	if dir == "/" {
		return nil
	}
	outside := func(p string) bool { return dir == "" || !strings.HasPrefix(p, dir+string(filepath.Separator)) }
	out := map[string]string{}
	consider := func(hp, ip string) {
		if fh, err := os.OpenFile(hp, os.O_RDONLY, 0); err == nil {
			if st, err := fh.Stat(); err == nil && st.Mode().IsRegular() && outside(hp) && isDynamicELF(fh, st.Size()) {
				out[ip] = hp
			}
			fh.Close()
		}
	}
	for _, a := range adds {
		real, err := filepath.EvalSymlinks(a.Src)
		if err != nil {
			continue
		}
		st, err := os.Stat(real)
		switch {
		case err != nil:
		case st.IsDir():
			filepath.WalkDir(real, func(hp string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					if rel, err := filepath.Rel(real, hp); err == nil {
						consider(hp, path.Join(path.Clean(a.Dest), filepath.ToSlash(rel)))
					}
				}
				return nil
			})
		default:
			consider(real, a.Dest)
		}
	}
	return out
}
