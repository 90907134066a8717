// Package dpkg reads a root's dpkg database: which installed package owns a path, each package's control
// stanza, the files it registered and their md5sums. It works on any root (the host, a sysroot, an image),
// reads only through an fs.FS, and answers for paths as they resolve in the root, so that a file dpkg
// registered as /lib/x86_64-linux-gnu/libc.so.6 is found at /usr/lib/x86_64-linux-gnu/libc.so.6 on a
// merged-/usr system.
//
// What it reads: var/lib/dpkg/status (or, without it, distroless' var/lib/dpkg/status.d/*), info/PKG.list
// and info/PKG.md5sums (PKG is "name:arch" for Multi-Arch: same packages, as dpkg names them), and
// var/lib/dpkg/diversions.
package dpkg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"pault.ag/go/debian/control"
	"pault.ag/go/debian/dependency"
)

// ErrNoDatabase is returned by Read for a root without a dpkg database.
var ErrNoDatabase = errors.New("no dpkg database (var/lib/dpkg/status)")

// Limits on what one root's database may make us read: a real status file is a few MiB.
const (
	maxStatus   = 64 << 20
	maxInfoFile = 16 << 20
	maxPackages = 100000
)

// Package is one installed package.
type Package struct {
	Name      string
	Arch      string // Architecture: amd64, all ...
	Version   string
	Source    string // the source package's name (the binary's own name when the stanza has no Source)
	MultiArch string // Multi-Arch: same, foreign, allowed or ""
	// Fields is the status stanza as dpkg wrote it, in its order.
	Fields control.Paragraph

	infoName string // the info/ file stem
}

// ID is the name dpkg uses for the package's info files: "name:arch" for Multi-Arch: same, else the name.
func (p *Package) ID() string { return p.infoName }

// DB is a root's dpkg database.
type DB struct {
	fsys     fs.FS
	Packages []*Package // installed packages, in status order
	byName   map[string][]*Package
	provides map[string][]*Package
	// owners maps the FNV-64a hash of each resolved registered path to the packages that registered it: a
	// whole system registers some 100,000 paths, and a build keeps its memory small.
	owners  map[uint64][]*Package
	resolve func(string) (string, error)
	topMu   sync.Mutex
	top     map[string]string // resolved top-level directories
}

// Option configures Read.
type Option func(*options)

type options struct {
	resolve func(string) (string, error)
}

// WithResolver gives Read the way to resolve a top-level directory inside the root, following its symbolic
// links (a merged-/usr /lib -> usr/lib). Without one, paths are taken as dpkg registered them.
func WithResolver(resolve func(dir string) (real string, err error)) Option {
	return func(o *options) { o.resolve = resolve }
}

// Read reads the dpkg database of the root fsys. It returns an error wrapping ErrNoDatabase when the root
// has none, and an error naming the file for a database it cannot read.
func Read(fsys fs.FS, opts ...Option) (*DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	db := &DB{fsys: fsys, byName: map[string][]*Package{}, provides: map[string][]*Package{}, owners: map[uint64][]*Package{},
		resolve: o.resolve, top: map[string]string{}}
	stanzas, err := db.readStatus()
	if err != nil {
		return nil, err
	}
	for _, para := range stanzas {
		if !installed(para.Values["Status"]) {
			continue
		}
		p := &Package{Name: para.Values["Package"], Arch: para.Values["Architecture"], Version: para.Values["Version"],
			MultiArch: para.Values["Multi-Arch"], Fields: para}
		if p.Name == "" {
			continue
		}
		p.Source = p.Name
		if src := strings.Fields(para.Values["Source"]); len(src) > 0 {
			p.Source = src[0] // "openssl (3.0.11-1)" when the versions differ
		}
		p.infoName = p.Name
		if p.MultiArch == "same" {
			p.infoName = p.Name + ":" + p.Arch
		}
		db.Packages = append(db.Packages, p)
		db.byName[p.Name] = append(db.byName[p.Name], p)
		if prov, err := dependency.Parse(para.Values["Provides"]); err == nil && para.Values["Provides"] != "" {
			for _, rel := range prov.Relations {
				for _, poss := range rel.Possibilities {
					db.provides[poss.Name] = append(db.provides[poss.Name], p)
				}
			}
		}
	}
	diversions, err := db.readDiversions()
	if err != nil {
		return nil, err
	}
	for _, p := range db.Packages {
		files, err := db.readInfoLines(p.infoName + ".list")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, f := range files {
			if d, ok := diversions[f]; ok && d.by != p.Name {
				f = d.to // this package's file lives at the diversion's target
			}
			key := db.key(f)
			if o := db.owners[key]; len(o) == 0 || o[len(o)-1] != p {
				db.owners[key] = append(o, p)
			}
		}
	}
	return db, nil
}

// installed reports whether a Status value leaves the package's files on disk.
func installed(status string) bool {
	f := strings.Fields(status)
	if len(f) != 3 {
		return false
	}
	switch f[2] {
	case "installed", "unpacked", "half-configured", "triggers-awaited", "triggers-pending":
		return true
	}
	return false
}

// readStatus returns the stanzas of var/lib/dpkg/status, or of every file of status.d/ (distroless).
func (db *DB) readStatus() ([]control.Paragraph, error) {
	data, err := db.readSmall("var/lib/dpkg/status", maxStatus)
	if err == nil {
		return parseStanzas("/var/lib/dpkg/status", data)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	ents, derr := fs.ReadDir(db.fsys, "var/lib/dpkg/status.d")
	if derr != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoDatabase, err)
	}
	var out []control.Paragraph
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".md5sums") {
			continue
		}
		name := "var/lib/dpkg/status.d/" + e.Name()
		data, err := db.readSmall(name, maxInfoFile)
		if err != nil {
			return nil, err
		}
		paras, err := parseStanzas("/"+name, data)
		if err != nil {
			return nil, err
		}
		for i := range paras {
			if paras[i].Values["Status"] == "" { // distroless writes none: the package is installed
				paras[i].Set("Status", "install ok installed")
			}
		}
		out = append(out, paras...)
	}
	return out, nil
}

func parseStanzas(name string, data []byte) ([]control.Paragraph, error) {
	r, err := control.NewParagraphReader(bytes.NewReader(data), nil)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	var out []control.Paragraph
	for {
		p, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		if len(out) >= maxPackages {
			return nil, fmt.Errorf("reading %s: more than %d packages", name, maxPackages)
		}
		out = append(out, *p)
	}
}

// diversion is one entry of var/lib/dpkg/diversions: from is diverted to to by package by (":" local).
type diversion struct{ to, by string }

func (db *DB) readDiversions() (map[string]diversion, error) {
	lines, err := db.readInfoLines("../diversions")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]diversion{}
	for i := 0; i+2 < len(lines); i += 3 {
		out[lines[i]] = diversion{to: lines[i+1], by: lines[i+2]}
	}
	return out, nil
}

// readInfoLines reads a file of var/lib/dpkg/info (name relative to it) as lines, without empty ones.
func (db *DB) readInfoLines(name string) ([]string, error) {
	data, err := db.readSmall(path.Join("var/lib/dpkg/info", name), maxInfoFile)
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// readSmall reads a regular file of the root, refusing one larger than limit.
func (db *DB) readSmall(name string, limit int64) ([]byte, error) {
	f, err := db.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("reading /%s: not a regular file", name)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("reading /%s: %d bytes, more than %d MiB", name, st.Size(), limit>>20)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading /%s: %w", name, err)
	}
	return data, nil
}

// canonical is p with its top-level directory resolved in the root (merged /usr's /lib -> usr/lib, /bin,
// /sbin, /lib64): a registered path and the path the root resolves it to then match. Deeper directories are
// taken as registered: resolving every registered directory would make a build hold the listings of the
// whole root (a system registers some 10,000 directories). top caches the resolved top-level directories.
func (db *DB) canonical(p string, top map[string]string) string {
	p = path.Clean(p)
	if db.resolve == nil || p == "/" {
		return p
	}
	first, rest, ok := strings.Cut(p[1:], "/")
	if !ok {
		return p // a top-level entry itself is taken as given
	}
	dir := "/" + first
	real, seen := top[dir]
	if !seen {
		var err error
		if real, err = db.resolve(dir); err != nil {
			real = dir
		}
		top[dir] = real
	}
	return path.Join(real, rest)
}

// Canonical is p with its top-level directory resolved in the root (the rest as given): the form in which
// Owners compares paths, so that a registered path and the path found in the root can be matched.
func (db *DB) Canonical(p string) string {
	db.topMu.Lock()
	defer db.topMu.Unlock()
	return db.canonical(p, db.top)
}

// pathKey is the index key of a resolved path.
func pathKey(p string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(p))
	return h.Sum64()
}

// key is pathKey(db.canonical(p)) for a registered path, computed without building the canonical string
// (Read does it for every registered path; dpkg writes them clean).
func (db *DB) key(p string) uint64 {
	clean := len(p) > 1 && p[0] == '/' && !strings.Contains(p, "//") && !strings.Contains(p, "/./") &&
		!strings.Contains(p, "/../") && !strings.HasSuffix(p, "/") && !strings.HasSuffix(p, "/.") && !strings.HasSuffix(p, "/..")
	if !clean || db.resolve == nil {
		return pathKey(db.canonical(p, db.top))
	}
	first, rest, ok := strings.Cut(p[1:], "/")
	if !ok {
		return pathKey(p)
	}
	real := db.canonical("/"+first+"/x", db.top) // resolves and caches the top-level directory
	h := fnv.New64a()
	h.Write([]byte(real[:len(real)-1]))
	h.Write([]byte(rest))
	return h.Sum64()
}

// Owners returns the packages that registered the path p of the root (its directory resolved as the root's
// links lead; the last component as given), in status order. A directory has many.
func (db *DB) Owners(p string) []*Package {
	return slices.Clone(db.owners[pathKey(db.Canonical(p))])
}

// Owner returns the one package that registered the file p, or nil when none or several did.
func (db *DB) Owner(p string) *Package {
	if o := db.owners[pathKey(db.Canonical(p))]; len(o) == 1 {
		return o[0]
	}
	return nil
}

// Files returns the paths p registered (info/PKG.list), as dpkg wrote them.
func (db *DB) Files(p *Package) ([]string, error) {
	return db.readInfoLines(p.infoName + ".list")
}

// Named returns the installed packages called name (one per architecture), or that provide it.
func (db *DB) Named(name string) []*Package {
	if ps := db.byName[name]; len(ps) > 0 {
		return slices.Clone(ps)
	}
	return slices.Clone(db.provides[name])
}

// Direct returns the installed packages p names in the given fields, not further.
func (db *DB) Direct(p *Package, fields ...string) []*Package {
	var out []*Package
	for _, field := range fields {
		dep, err := dependency.Parse(p.Fields.Values[field])
		if err != nil || p.Fields.Values[field] == "" {
			continue
		}
		for _, rel := range dep.Relations {
			for _, poss := range rel.Possibilities {
				for _, q := range db.Named(poss.Name) {
					if q != p && !slices.Contains(out, q) {
						out = append(out, q)
					}
				}
			}
		}
	}
	return out
}

// Relations returns the packages p names in the given fields ("Depends", "Pre-Depends", "Recommends",
// "Suggests"), transitively and installed ones only, p first: every alternative that is installed counts.
func (db *DB) Relations(p *Package, fields ...string) []*Package {
	seen := map[*Package]bool{p: true}
	out := []*Package{p}
	for i := 0; i < len(out); i++ {
		for _, q := range db.Direct(out[i], fields...) {
			if !seen[q] {
				seen[q] = true
				out = append(out, q)
			}
		}
	}
	return out
}

// MD5Sums returns the package's info/PKG.md5sums: path as registered (without the leading '/') -> md5.
func (db *DB) MD5Sums(p *Package) (map[string]string, error) {
	lines, err := db.readInfoLines(p.infoName + ".md5sums")
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(lines))
	for _, l := range lines {
		sum, file, ok := strings.Cut(l, "  ")
		if ok {
			out[file] = sum
		}
	}
	return out, nil
}
