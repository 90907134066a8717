package collector

import (
	"cmp"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/scratchpack/scratchpack/collector/dpkg"
)

// Layerings are the ways an image's files are split into layers (ImageConfig.Layering).
const (
	// LayeringSingle puts every file in one layer (the default).
	LayeringSingle = "single"
	// LayeringPackage puts the files each Debian package owns in that package's own layer, so that images
	// built from one root share the layers of the packages they have in common: the same files of the
	// same package give byte-identical layers. What no single package owns (generated files, host files,
	// the programs given, the package metadata of the image) goes in a top layer of its own.
	LayeringPackage = "package"
)

// DefaultMaxLayers is the layer budget of package layering: the top layer and 63 others (the smallest
// packages beyond that share one layer). Overlay file systems of older kernels stack at most 128 layers.
const DefaultMaxLayers = 64

// bigFile is the size from which a file of a package gets a layer of its own: the big libraries (libc,
// libcrypto, libpython) are what images share, while which small files of a package an image needs
// (libc6's gconv and NSS modules) differs from image to image.
const bigFile = 512 << 10

// CheckLayering validates a layering name and budget.
func CheckLayering(layering string, maxLayers int) error {
	switch layering {
	case "", LayeringSingle, LayeringPackage:
	default:
		return fmt.Errorf("layering %q: want %s or %s", layering, LayeringSingle, LayeringPackage)
	}
	if maxLayers < 0 || maxLayers == 1 && layering == LayeringPackage {
		return fmt.Errorf("a layer budget of %d: package layering needs at least 2 (a package layer and the top one)", maxLayers)
	}
	return nil
}

// LayerSpec is one layer of an image: a tree of its own (holding the directories above its files) and
// the history entry that says what it is.
type LayerSpec struct {
	Tree      *Tree
	CreatedBy string
}

// packageLayers splits the planned tree by owning package: one layer per package, the packages that most
// others depend on lowest (libc6 first), then the top layer. Beyond maxLayers, the smallest packages share
// one layer just below the top.
func (p *Planner) packageLayers(maxLayers int, top string) ([]LayerSpec, error) {
	if maxLayers == 0 {
		maxLayers = DefaultMaxLayers
	}
	db, err := p.Packages()
	if errors.Is(err, dpkg.ErrNoDatabase) {
		return []LayerSpec{{Tree: p.tree, CreatedBy: top}}, nil // nothing to split by
	}
	if err != nil {
		return nil, err
	}
	full := p.tree
	groups := map[*dpkg.Package][]*Entry{}
	var rest []*Entry
	holds := map[string]bool{} // directories that hold something
	for _, e := range full.Entries() {
		holds[path.Dir(e.Path)] = true
	}
	for _, e := range full.Entries() {
		if e.Path == "/" {
			continue
		}
		if pkg := p.entryPackage(db, e); pkg != nil {
			groups[pkg] = append(groups[pkg], e)
		} else if e.Kind != KindDir || !holds[e.Path] {
			rest = append(rest, e) // a directory goes with what it holds; an empty one stays on top
		}
	}
	pkgs := make([]*dpkg.Package, 0, len(groups))
	for pkg := range groups {
		pkgs = append(pkgs, pkg)
	}
	rdeps := reverseDepends(db)
	slices.SortFunc(pkgs, func(a, b *dpkg.Package) int {
		return cmp.Or(-cmp.Compare(rdeps[a], rdeps[b]), strings.Compare(a.ID(), b.ID()))
	})
	var merged []*dpkg.Package
	layersOf := func(pkg *dpkg.Package) int { // its big files, and one for the rest
		n, rest := 0, false
		for _, e := range groups[pkg] {
			if e.Kind == KindFile && e.Size >= bigFile {
				n++
			} else {
				rest = true
			}
		}
		if rest {
			n++
		}
		return n
	}
	total := 0
	for _, pkg := range pkgs {
		total += layersOf(pkg)
	}
	if budget := maxLayers - 1; total > budget {
		// Keep the largest packages alone (in popularity order) while they fit in the budget with one
		// layer left for the rest, which share it.
		bySize := slices.Clone(pkgs)
		slices.SortStableFunc(bySize, func(a, b *dpkg.Package) int {
			return cmp.Or(-cmp.Compare(groupBytes(groups[a]), groupBytes(groups[b])), strings.Compare(a.ID(), b.ID()))
		})
		keep := map[*dpkg.Package]bool{}
		used := 0
		for _, pkg := range bySize {
			if n := layersOf(pkg); used+n <= budget-1 {
				keep[pkg] = true
				used += n
			}
		}
		pkgs = slices.DeleteFunc(pkgs, func(pkg *dpkg.Package) bool {
			if !keep[pkg] {
				merged = append(merged, pkg)
			}
			return !keep[pkg]
		})
	}
	var out []LayerSpec
	for _, pkg := range pkgs {
		var small []*Entry
		for _, e := range groups[pkg] {
			if e.Kind != KindFile || e.Size < bigFile {
				small = append(small, e)
				continue
			}
			t, err := subTree(full, []*Entry{e})
			if err != nil {
				return nil, err
			}
			out = append(out, LayerSpec{Tree: t, CreatedBy: "scratchpack build: package " + pkg.ID() + " " + pkg.Version + ": " + e.Path})
		}
		if len(small) == 0 {
			continue
		}
		t, err := subTree(full, small)
		if err != nil {
			return nil, err
		}
		out = append(out, LayerSpec{Tree: t, CreatedBy: "scratchpack build: package " + pkg.ID() + " " + pkg.Version})
	}
	if len(merged) > 0 {
		var es []*Entry
		var names []string
		for _, pkg := range merged {
			es = append(es, groups[pkg]...)
			names = append(names, pkg.ID())
		}
		slices.Sort(names)
		t, err := subTree(full, es)
		if err != nil {
			return nil, err
		}
		out = append(out, LayerSpec{Tree: t, CreatedBy: "scratchpack build: packages " + strings.Join(names, " ")})
	}
	t, err := subTree(full, rest)
	if err != nil {
		return nil, err
	}
	return append(out, LayerSpec{Tree: t, CreatedBy: top}), nil
}

// entryPackage is the one package that owns an entry of the image as it is in the root, or nil: a
// generated or host file, a program given (it goes on top), a path several packages or none registered,
// a link to a directory (merged /usr's /lib, which dpkg sees as a directory of every package).
func (p *Planner) entryPackage(db *dpkg.DB, e *Entry) *dpkg.Package {
	if strings.HasPrefix(e.Path, StatusDir+"/") || slices.ContainsFunc(e.Origins, func(o Origin) bool { return o.Kind == OriginInput }) {
		return nil
	}
	rp := e.RootPath()
	switch e.Kind {
	case KindFile:
		if rp == "" {
			return nil
		}
	case KindSymlink:
		rp = e.Path
		if l, err := p.Lookup(rp); err != nil || l.Mode.IsDir() {
			return nil
		}
	default:
		return nil
	}
	if rp != e.Path {
		return nil // placed elsewhere than the package put it
	}
	return db.Owner(rp)
}

// reverseDepends counts, for each installed package, the installed packages that depend on it directly.
func reverseDepends(db *dpkg.DB) map[*dpkg.Package]int {
	n := map[*dpkg.Package]int{}
	for _, p := range db.Packages {
		for _, q := range db.Direct(p, "Depends", "Pre-Depends") {
			n[q]++
		}
	}
	return n
}

func groupBytes(es []*Entry) int64 {
	var n int64
	for _, e := range es {
		n += e.Size
	}
	return n
}

// subTree is a tree of the given entries of full, with the directories above each as full has them.
func subTree(full *Tree, es []*Entry) (*Tree, error) {
	t := NewTree()
	for _, e := range es {
		var dirs []string
		for d := path.Dir(e.Path); d != "/"; d = path.Dir(d) {
			dirs = append(dirs, d)
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			if t.Get(dirs[i]) != nil {
				continue
			}
			if d := full.Get(dirs[i]); d != nil {
				if err := t.Add(*d); err != nil {
					return nil, err
				}
			}
		}
		if t.Get(e.Path) == nil {
			if err := t.Add(*e); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}
