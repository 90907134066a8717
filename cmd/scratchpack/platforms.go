package main

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/scratchpack/scratchpack/collector"
	"github.com/scratchpack/scratchpack/collector/rootfs"
)

// platformPrefix is what makes "OS/ARCH[/VARIANT]=" a platform before a --root or --add value: lowercase
// names, the OS starting with a letter (so "./a/b=c" and "/abs=x" are plain paths).
var platformPrefix = regexp.MustCompile(`^[a-z][a-z0-9_]*/[a-z0-9][a-z0-9_]*(/[a-z0-9_.]+)?=`)

// splitPlatform splits "OS/ARCH[/VARIANT]=VALUE"; ok is false for a value with no platform before it.
func splitPlatform(arg string) (p v1.Platform, value string, ok bool, err error) {
	m := platformPrefix.FindString(arg)
	if m == "" {
		return v1.Platform{}, arg, false, nil
	}
	p, err = collector.ParsePlatform(strings.TrimSuffix(m, "="))
	return p, arg[len(m):], true, err
}

// platformRoot is one --root OS/ARCH=ROOT.
type platformRoot struct {
	platform v1.Platform
	root     string
}

// buildRoots is what the --root flags say: one plain root, or one root per platform.
type buildRoots struct {
	plain     string
	platforms []platformRoot
}

func parseRoots(args []string) (buildRoots, error) {
	var r buildRoots
	for _, a := range args {
		p, value, ok, err := splitPlatform(a)
		switch {
		case err != nil:
			return r, fmt.Errorf("--root %q: %w", a, err)
		case value == "":
			return r, fmt.Errorf("--root %q: no root after the platform", a)
		case !ok && r.plain != "":
			return r, fmt.Errorf("--root %s and --root %s: one root, or one per platform (OS/ARCH=ROOT)", r.plain, a)
		case !ok:
			r.plain = a
		default:
			if i := slices.IndexFunc(r.platforms, func(x platformRoot) bool { return x.platform.Equals(p) }); i >= 0 {
				return r, fmt.Errorf("--root: two roots for %s (%s and %s)", p, r.platforms[i].root, value)
			}
			r.platforms = append(r.platforms, platformRoot{p, value})
		}
	}
	if r.plain != "" && len(r.platforms) > 0 {
		return r, fmt.Errorf("--root %s has no platform, but --root %s=%s has: give every root its platform", r.plain, r.platforms[0].platform, r.platforms[0].root)
	}
	if r.plain == "" && len(r.platforms) == 0 {
		r.plain = "/"
	}
	return r, nil
}

// pick keeps only the platform root --platform names (an exact match, else the only one of that OS and
// architecture when --platform gives no variant).
func (r *buildRoots) pick(want v1.Platform) error {
	i := slices.IndexFunc(r.platforms, func(x platformRoot) bool { return x.platform.Equals(want) })
	if i < 0 && want.Variant == "" {
		var same []int
		for j, x := range r.platforms {
			if x.platform.OS == want.OS && x.platform.Architecture == want.Architecture {
				same = append(same, j)
			}
		}
		if len(same) == 1 {
			i = same[0]
		}
	}
	if i < 0 {
		var have []string
		for _, x := range r.platforms {
			have = append(have, x.platform.String())
		}
		return fmt.Errorf("--platform %s: no --root for it (the roots are for %s)", want, strings.Join(have, ", "))
	}
	r.platforms = r.platforms[i : i+1]
	return nil
}

// platformAdd is one --add OS/ARCH=SRC[:DEST].
type platformAdd struct {
	platform v1.Platform
	add      collector.Add
}

// sortAdds gives each platform root its own adds; with a plain root, only those of --platform apply.
func (r buildRoots) sortAdds(adds []platformAdd, platform *v1.Platform) (shared []collector.Add, own map[int][]collector.Add, err error) {
	own = map[int][]collector.Add{}
	for _, a := range adds {
		if len(r.platforms) == 0 {
			if platform == nil {
				return nil, nil, fmt.Errorf("--add %s=%s: the build's platform is not known before it runs: give --platform, or roots for each platform (--root OS/ARCH=ROOT)", a.platform, a.add.Src)
			}
			if platformMatches(a.platform, *platform) {
				shared = append(shared, a.add)
			}
			continue
		}
		matched := false
		for i, x := range r.platforms {
			if platformMatches(a.platform, x.platform) {
				own[i], matched = append(own[i], a.add), true
			}
		}
		if !matched && platform == nil { // with --platform, it may be for a platform not built this time
			return nil, nil, fmt.Errorf("--add %s=%s: no --root for %s", a.platform, a.add.Src, a.platform)
		}
	}
	return shared, own, nil
}

// platformMatches: an add for linux/arm64 goes to linux/arm64/v8 too; one for a variant only to it.
func platformMatches(add, root v1.Platform) bool {
	return add.OS == root.OS && add.Architecture == root.Architecture && (add.Variant == "" || add.Variant == root.Variant)
}

// openPlatformRoots opens every platform root, concurrently (an image root is read whole), each image
// for its own platform. On an error, those opened are closed again.
func openPlatformRoots(ctx context.Context, prs []platformRoot, opts []rootfs.LoadOption) ([]rootfs.FS, error) {
	roots := make([]rootfs.FS, len(prs))
	g, gctx := errgroup.WithContext(ctx)
	for i, pr := range prs {
		g.Go(func() error {
			fsys, err := rootfs.Open(gctx, pr.root, append(slices.Clone(opts), rootfs.WithPlatform(pr.platform))...)
			if err != nil {
				return fmt.Errorf("opening the root for %s: %w", pr.platform, err)
			}
			roots[i] = fsys
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		for _, r := range roots {
			if r != nil {
				r.Close()
			}
		}
		return nil, err
	}
	return roots, nil
}
