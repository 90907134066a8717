package collector

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"slices"

	"github.com/scratchpack/scratchpack/collector/dpkg"
	"github.com/scratchpack/scratchpack/collector/rootfs"
	"github.com/scratchpack/scratchpack/elfdeps"
)

// A Rule adds what programs load at run time without naming it in DT_NEEDED, decided from what the plan
// holds and imports. Every rule is small, named, listed by `scratchpack rules`, and can be switched off.
// Each lives in its own file, rule_NAME.go.
type Rule interface {
	Name() string
	Summary() string
	// Apply adds what the rule finds needed through v and returns notes saying what it added and why.
	Apply(v View, o RuleOptions) ([]string, error)
}

// View is what a rule sees of the plan: the root and the tree so far, read only, and the few ways a rule
// may add to the tree. *Planner implements it.
type View interface {
	// Root is the root the plan reads from.
	Root() rootfs.FS
	// Lookup resolves a path inside the root, as the kernel would under chroot.
	Lookup(p string) (elfdeps.Lookup, error)
	// Entry returns a copy of the tree's entry that p leads to (following the tree's links), or false.
	Entry(p string) (Entry, bool)
	// ReadEntry returns the content of the tree's file that p leads to.
	ReadEntry(p string) ([]byte, error)
	// ReadRootFile returns the content of a small regular file of the root (at most 1 MiB).
	ReadRootFile(p string) ([]byte, error)
	// Libraries are the paths of the shared objects in the closure.
	Libraries() []string
	// Importers returns the objects of the closure that import any of symbols, and the symbol each
	// imports first.
	Importers(symbols ...string) (who, sym []string)

	// AddRootPath adds a path of the root (a file, its links, or a whole tree) at the same path.
	AddRootPath(p string, o Origin) error
	// AddData adds a generated file unless the tree already has something at p (a user's file wins).
	AddData(p string, data []byte, mode uint32, o Origin) (added bool, err error)
	// AddSymlink adds a link unless the tree already has something at p.
	AddSymlink(p, target string, o Origin) (added bool, err error)
	// AddDir adds a directory with its mode (permission and special bits as in chmod(2)) and owners.
	AddDir(p string, mode uint32, uid, gid int, o Origin) error
	// Dlopen adds what glibc maps when the first program dlopens name, and returns those paths.
	Dlopen(name string, o Origin) ([]string, error)

	// LoaderNeeds are, per interpreter, the closure's libraries its loader reaches only through the root's
	// loader configuration.
	LoaderNeeds() []LoaderNeed
	// LoaderDirs returns the root's /etc/ld.so.conf directories (in ldconfig's order) and the built-in
	// directories of the glibc interpreter interp.
	LoaderDirs(interp string) (conf, system []string, err error)
	// TreeFS is the image's tree as a file system, as the image will have it.
	TreeFS() fs.FS
	// Packages is the root's dpkg database (an error wrapping dpkg.ErrNoDatabase when it has none).
	Packages() (*dpkg.DB, error)
	// Entries are copies of the tree's entries, sorted by path.
	Entries() []Entry
	// Objects are the root paths of the programs (#! scripts, ELF inputs, script interpreters, programs rules
	// added) and of the shared objects of the closure, in the order found.
	Objects() (programs, libraries []string)
	// Scripts are the #! scripts of the plan with their interpreter lines.
	Scripts() []Script
}

// RuleOptions tunes the rules.
type RuleOptions struct {
	// Disabled are rule names not to apply.
	Disabled []string
	// Gconv is "auto" (the configuration and common modules), "all", or a comma-separated list of module
	// names (UTF-16,ISO8859-2).
	Gconv string
	// Locales are locale names to add, e.g. C.UTF-8 or de_DE.UTF-8.
	Locales []string
	// Base are the base-file options (accounts, certificates, time zones).
	Base BaseFiles
	// LiteralBudget is how many bytes the literals rule may add (DefaultLiteralBudget when 0).
	LiteralBudget int64
	// NoPackageMetadata leaves the Debian package metadata (the packages rule) out.
	NoPackageMetadata bool
}

// BaseFiles says which of the small files every real program quietly reads go into the image.
type BaseFiles struct {
	// User is the image's user (NAME, UID, NAME:GROUP or UID:GID). A NAME gets its own passwd and group
	// lines (from the root's /etc/passwd when it has one, else NonrootID, 65532) and a home it owns.
	User string
	// Certs is "auto" (the CA bundle when the closure holds a TLS library), "always" or "never".
	Certs string
	// TZData adds the root's /usr/share/zoneinfo.
	TZData bool
}

// Rules returns every rule in the order they apply.
func Rules() []Rule {
	return []Rule{accountsRule{}, nsswitchRule{}, hostsRule{}, tmpRule{}, mountpointsRule{},
		pythonRule{}, perlRule{}, rubyRule{}, tclRule{}, phpRule{}, certsRule{}, tzdataRule{},
		nginxRule{}, literalsRule{}, javaRule{}, shellRule{}, netdbRule{}, nssModulesRule{}, libgccSRule{}, gconvRule{}, opensslRule{}, localeRule{}, packagesRule{}, ldcacheRule{}}
}

// HasRule reports whether name is a rule's name.
func HasRule(name string) bool {
	return slices.ContainsFunc(Rules(), func(r Rule) bool { return r.Name() == name })
}

// ApplyRules applies every rule not disabled, in order, and returns the notes saying what each added and why.
func (p *Planner) ApplyRules(o RuleOptions) ([]string, error) {
	for _, d := range o.Disabled {
		if !HasRule(d) {
			return nil, fmt.Errorf("no rule named %q (see `scratchpack rules`)", d)
		}
	}
	var notes []string
	for _, r := range Rules() {
		if _, last := r.(ldcacheRule); last {
			// The cache is written over the finished closure, dlopened libraries' needs included.
			if err := p.FinishDlopens(); err != nil {
				return nil, err
			}
		}
		if slices.Contains(o.Disabled, r.Name()) {
			continue
		}
		n, err := r.Apply(p, o)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", r.Name(), err)
		}
		for _, line := range n {
			notes = append(notes, r.Name()+": "+line)
		}
	}
	return notes, nil
}

// ruleOrigin is the origin recorded on a file a rule adds.
func ruleOrigin(rule, because, by string) Origin {
	return Origin{Kind: OriginRule, Rule: rule, By: by, Reason: fmt.Sprintf("%s rule: %s", rule, because)}
}

// The View, as the planner gives it.

func (p *Planner) Lookup(file string) (elfdeps.Lookup, error) { return p.resolvers[0].Lookup(file) }

func (p *Planner) Entry(file string) (Entry, bool) {
	e := p.tree.Resolve(file)
	if e == nil {
		return Entry{}, false
	}
	c := *e
	c.Origins = slices.Clone(e.Origins)
	return c, true
}

func (p *Planner) ReadEntry(file string) ([]byte, error) {
	e := p.tree.Resolve(file)
	if e == nil || e.Kind != KindFile {
		return nil, fmt.Errorf("%s: no such file in the image", file)
	}
	return readEntry(e)
}

func readEntry(e *Entry) ([]byte, error) {
	rc, err := e.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rc); err != nil {
		return nil, fmt.Errorf("reading %s: %w", e.Path, err)
	}
	return buf.Bytes(), nil
}

// maxRootFile bounds what ReadRootFile reads: configuration and account files are small.
const maxRootFile = 1 << 20

func (p *Planner) ReadRootFile(file string) ([]byte, error) {
	l, err := p.Lookup(file)
	if err != nil {
		return nil, err
	}
	if !l.Mode.IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", file)
	}
	return p.readRoot(l.RealPath, maxRootFile)
}

func (p *Planner) Libraries() []string { return slices.Clone(p.libraries) }

func (p *Planner) Importers(symbols ...string) (who []string, sym []string) {
	for _, obj := range append(slices.Clone(p.programPaths), p.libraries...) {
		imports, ok := p.imports[obj]
		if !ok {
			imports, _ = p.resolvers[0].Imports(obj) // unreadable symbols import nothing we can act on
			p.imports[obj] = imports
		}
		for _, s := range symbols {
			if _, found := slices.BinarySearch(imports, s); found {
				who, sym = append(who, obj), append(sym, s)
				break
			}
		}
	}
	return who, sym
}

func (p *Planner) AddData(file string, data []byte, mode uint32, o Origin) (bool, error) {
	if p.tree.Get(file) != nil {
		return false, nil
	}
	return true, p.tree.Add(Entry{Path: file, Kind: KindFile, Mode: unixMode(mode), Data: data, Origins: []Origin{o}})
}

func (p *Planner) AddSymlink(file, target string, o Origin) (bool, error) {
	if p.tree.Get(file) != nil {
		return false, nil
	}
	return true, p.tree.Add(Entry{Path: file, Kind: KindSymlink, Target: target, Origins: []Origin{o}})
}

func (p *Planner) AddDir(dir string, mode uint32, uid, gid int, o Origin) error {
	return p.tree.Add(Entry{Path: dir, Kind: KindDir, Mode: unixMode(mode), UID: uid, GID: gid, Origins: []Origin{o}})
}

func (p *Planner) Dlopen(name string, o Origin) ([]string, error) {
	if len(p.programPaths) == 0 {
		return nil, nil
	}
	res, err := p.resolvers[0].Dlopen(p.programPaths[0], name)
	if err != nil {
		return nil, err
	}
	if len(res.Problems) > 0 {
		return nil, res.Problems[0]
	}
	var added []string
	for _, obj := range res.Objects {
		oo := o
		if obj.Name != name {
			oo.By = obj.NeededBy
		}
		oo.RootPath = obj.Path
		if err := p.addResolved(obj.Path, obj.RealPath, obj.Links, oo); err != nil {
			return nil, err
		}
		p.addLibrary(obj.Path)
		p.noteLoaderNeed(res, obj)
		added = append(added, obj.Path)
	}
	return added, nil
}

func (p *Planner) LoaderNeeds() []LoaderNeed {
	out := slices.Clone(p.loaderNeeds)
	for i := range out {
		out[i].Libraries = slices.Clone(out[i].Libraries)
	}
	return out
}

func (p *Planner) LoaderDirs(interp string) (conf, system []string, err error) {
	system, err = p.resolvers[0].SystemDirs(interp)
	return p.resolvers[0].ConfDirs(), system, err
}

func (p *Planner) TreeFS() fs.FS { return p.tree.FS() }

func (p *Planner) Packages() (*dpkg.DB, error) {
	p.dpkgOnce.Do(func() {
		p.dpkg, p.dpkgErr = dpkg.Read(p.root, dpkg.WithResolver(func(dir string) (string, error) {
			l, err := p.Lookup(dir)
			return l.RealPath, err
		}))
	})
	return p.dpkg, p.dpkgErr
}

func (p *Planner) Entries() []Entry {
	var out []Entry
	for _, e := range p.tree.Entries() {
		c := *e
		c.Origins = slices.Clone(e.Origins)
		out = append(out, c)
	}
	return out
}

func (p *Planner) Objects() (programs, libraries []string) {
	for _, s := range p.scripts {
		programs = append(programs, s.Path)
	}
	return append(programs, p.programPaths...), slices.Clone(p.libraries)
}

// Script is a #! script of the plan: its root path and its interpreter line ("/usr/bin/env python3").
type Script struct {
	Path, Interp string
}

func (p *Planner) Scripts() []Script { return slices.Clone(p.scripts) }

// unixMode turns chmod(2) bits into an fs.FileMode.
func unixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// glibcLibc returns the image path of glibc's libc.so.6 in the closure, or "".
func glibcLibc(v View) string {
	for _, lib := range v.Libraries() {
		if path.Base(lib) == "libc.so.6" {
			return lib
		}
	}
	return ""
}
