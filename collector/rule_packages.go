package collector

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/scratchpack/scratchpack/collector/dpkg"
	"pault.ag/go/debian/control"
)

// packagesRule writes what vulnerability scanners read to know an image's packages, as distroless does:
// for every Debian package that owns a file of the image (partial packages included), its control stanza in
// /var/lib/dpkg/status.d/NAME and the md5sums of exactly its files in the image in NAME.md5sums (with the
// paths dpkg registered), and its /usr/share/doc/NAME/copyright; and the root's /etc/os-release and
// /etc/debian_version (base-files). The stanza is the root's status entry without Status and Conffiles.
// A package of which several architectures own files is written as NAME:ARCH. A root without a dpkg
// database gets nothing, and the build says so.
type packagesRule struct{}

func (packagesRule) Name() string { return "packages" }

func (packagesRule) Summary() string {
	return "Debian package metadata for scanners: /var/lib/dpkg/status.d/NAME and NAME.md5sums for every package owning a file of the image, its copyright, /etc/os-release and /etc/debian_version"
}

// StatusDir is where the packages rule writes the image's package metadata.
const StatusDir = "/var/lib/dpkg/status.d"

func (packagesRule) Apply(v View, o RuleOptions) ([]string, error) {
	if o.NoPackageMetadata {
		return nil, nil
	}
	db, err := v.Packages()
	if errors.Is(err, dpkg.ErrNoDatabase) {
		return []string{"the root has no dpkg database: the image gets no package metadata"}, nil
	}
	if err != nil {
		return nil, err
	}
	origin := ruleOrigin("packages", "package metadata for scanners", "")
	for _, f := range []string{"/etc/os-release", "/etc/debian_version"} {
		if _, in := v.Entry(f); in {
			continue
		}
		if _, err := v.Lookup(f); err == nil {
			if err := v.AddRootPath(f, origin); err != nil {
				return nil, err
			}
		}
	}
	owned := imageOwners(v, db)
	for _, pkg := range sortedPackages(owned) {
		doc := "/usr/share/doc/" + pkg.Name + "/copyright"
		if _, in := v.Entry(doc); in {
			continue
		}
		if l, err := v.Lookup(doc); err == nil && l.Mode.IsRegular() {
			if err := v.AddRootPath(doc, ruleOrigin("packages", "the licence of "+pkg.ID(), "")); err != nil {
				return nil, err
			}
		}
	}
	owned = imageOwners(v, db) // the copyrights may be another package's (a doc directory linked to it)
	pkgs := sortedPackages(owned)
	arches := map[string]int{}
	for _, pkg := range pkgs {
		arches[pkg.Name]++
	}
	for _, pkg := range pkgs {
		name := pkg.Name
		if arches[name] > 1 {
			name = pkg.Name + ":" + pkg.Arch
		}
		stanza, err := controlStanza(pkg)
		if err != nil {
			return nil, fmt.Errorf("writing the metadata of %s: %w", pkg.ID(), err)
		}
		o := ruleOrigin("packages", fmt.Sprintf("%s owns %d files of the image", pkg.ID(), len(owned[pkg])), "")
		if _, err := v.AddData(path.Join(StatusDir, name), stanza, 0o644, o); err != nil {
			return nil, err
		}
		sums, err := db.MD5Sums(pkg)
		if err != nil {
			continue // a package without md5sums (rare) gets its stanza only
		}
		in := map[string]bool{}
		for _, p := range owned[pkg] {
			in[db.Canonical(p)] = true
		}
		var lines []string
		for file, sum := range sums {
			if in[db.Canonical("/"+file)] {
				lines = append(lines, sum+"  "+file+"\n")
			}
		}
		sort.Strings(lines)
		if _, err := v.AddData(path.Join(StatusDir, name+".md5sums"), []byte(strings.Join(lines, "")), 0o644, o); err != nil {
			return nil, err
		}
	}
	return []string{fmt.Sprintf("wrote the metadata of %d packages in %s", len(pkgs), StatusDir)}, nil
}

// imageOwners maps each package owning a file or link of the image to those paths (as in the root).
func imageOwners(v View, db *dpkg.DB) map[*dpkg.Package][]string {
	out := map[*dpkg.Package][]string{}
	for _, e := range v.Entries() {
		if e.Kind == KindDir || strings.HasPrefix(e.Path, StatusDir+"/") {
			continue
		}
		p := e.Path
		if rp := e.RootPath(); rp != "" {
			p = rp
		} else if e.Kind == KindFile {
			continue // generated content or a host file: no package's
		}
		if e.Kind == KindSymlink {
			// A link to a directory (merged /usr's /lib) is, for dpkg, a directory every package lists.
			if l, err := v.Lookup(p); err != nil || l.Mode.IsDir() {
				continue
			}
		}
		for _, pkg := range db.Owners(p) {
			out[pkg] = append(out[pkg], p)
		}
	}
	return out
}

func sortedPackages(m map[*dpkg.Package][]string) []*dpkg.Package {
	var out []*dpkg.Package
	for p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *dpkg.Package) int { return strings.Compare(a.ID(), b.ID()) })
	return out
}

// controlStanza is the package's status stanza as the image carries it: every field in the root's order but
// Status and Conffiles.
func controlStanza(pkg *dpkg.Package) ([]byte, error) {
	para := control.Paragraph{Values: map[string]string{}}
	for _, k := range pkg.Fields.Order {
		if k == "Status" || k == "Conffiles" {
			continue
		}
		para.Set(k, strings.TrimRight(pkg.Fields.Values[k], "\n"))
	}
	var b bytes.Buffer
	if err := para.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
