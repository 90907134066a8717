package collector

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/scratchpack/scratchpack/collector/dpkg"
)

// literalsRule adds what programs open by a name they hold in their read-only data: an absolute path (a
// data file, a plugin or helper directory, a configuration file) or, for programs, the bare name of another
// program found on the root's PATH (tar's "xz", gpg's "gpg-agent"). A candidate is added only when the
// root's dpkg database says it belongs to the package of the object naming it, or to a package that one
// depends on (Depends and Pre-Depends, transitively) or directly recommends or suggests and the root has
// installed. What other rules own (locales, time zones, gconv), documentation, and private files are never
// added. Added programs and libraries are searched in turn.
type literalsRule struct{}

func (literalsRule) Name() string { return "literals" }

func (literalsRule) Summary() string {
	return "files, directories and helper programs that programs and libraries name in their read-only data, when the root's dpkg database puts them in the object's package or one it depends on (--literal-budget)"
}

// DefaultLiteralBudget is how many bytes the literals rule may add before the build fails.
const DefaultLiteralBudget = 256 << 20

// literalNever are trees no literal brings in: private, per-machine or run-time places.
var literalNever = []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/run", "/var/lock", "/home",
	"/root", "/mnt", "/media", "/boot", "/lost+found", "/etc/ssl/private", "/etc/ssh", "/var/lib/dpkg",
	// What other rules decide, or nobody needs at run time:
	"/usr/lib/locale", "/usr/share/locale", "/usr/share/i18n", "/usr/share/zoneinfo", "/usr/share/doc",
	"/usr/share/man", "/usr/share/info", "/usr/share/lintian", "/etc/ssl/certs", "/usr/share/ca-certificates",
	"/usr/share/X11/locale"}

// interpreterTree reports whether p is (in) an interpreter's module tree: which modules a script needs is
// for the interpreter's own rules or a trace to say, not for the interpreter's literals (perl names all of
// /usr/share/perl/5.36).
func interpreterTree(p string) bool {
	for _, prefix := range []string{"/usr/share/perl", "/usr/share/perl5", "/usr/lib/python3", "/usr/lib/python2", "/usr/lib/ruby",
		"/usr/share/tcltk", "/usr/share/php", "/usr/lib/php", "/usr/share/lua", "/usr/lib/nodejs"} {
		if p == prefix || strings.HasPrefix(p, prefix+"/") || strings.HasPrefix(p, prefix+".") {
			return true
		}
	}
	if rest, ok := strings.CutPrefix(p, "/usr/lib/"); ok {
		if i := strings.IndexByte(rest, '/'); i > 0 && strings.Contains(rest[:i], "-linux-") {
			sub := rest[i+1:]
			return strings.HasPrefix(sub, "perl") || strings.HasPrefix(sub, "perl5") || strings.HasPrefix(sub, "perl-base") ||
				strings.HasPrefix(sub, "ruby") || strings.HasPrefix(sub, "lua")
		}
	}
	return false
}

// literalNotTrees are directories a literal never brings in whole (files under them still may be).
var literalNotTrees = []string{"/", "/usr", "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/share", "/usr/include",
	"/usr/local", "/usr/local/bin", "/usr/local/lib", "/usr/local/share", "/etc", "/var", "/var/lib", "/var/cache",
	"/var/log", "/var/spool", "/opt", "/srv", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/usr/bin",
	"/usr/sbin", "/usr/games", "/usr/share/misc", "/etc/default", "/etc/alternatives"}

// literalSecret reports whether p names a file no image should carry: password hashes and private keys.
func literalSecret(p string) bool {
	base := path.Base(p)
	switch base {
	case "shadow", "shadow-", "gshadow", "gshadow-", "opasswd", "sudoers":
		return true
	}
	return strings.HasSuffix(base, "_key") || strings.HasSuffix(base, ".key") || strings.HasPrefix(base, "ssh_host_")
}

func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// multiarchLibDir reports whether p is a /lib/TRIPLET or /usr/lib/TRIPLET directory (or gconv in it).
func multiarchLibDir(p string) bool {
	for _, prefix := range []string{"/lib/", "/usr/lib/"} {
		if rest, ok := strings.CutPrefix(p, prefix); ok && strings.Contains(rest, "-linux-") {
			return !strings.Contains(rest, "/") || strings.HasSuffix(rest, "/gconv") || strings.Contains(rest, "/gconv/")
		}
	}
	return false
}

// literalAdd is one path the rule would add.
type literalAdd struct {
	path string // as the literal names it (or a file under it)
	size int64
	why  string
	by   string
}

type literalScan struct {
	v       View
	db      *dpkg.DB
	allowed map[*dpkg.Package]map[*dpkg.Package]bool
	onPath  map[string]string // program name -> its path in a PATH directory of the root
	done    map[string]bool   // paths considered
	counted map[string]bool   // real paths whose size is counted
	adds    []literalAdd
	total   int64
}

func (literalsRule) Apply(v View, o RuleOptions) ([]string, error) {
	db, err := v.Packages()
	if errors.Is(err, dpkg.ErrNoDatabase) {
		return []string{"the root has no dpkg database: no path literals are followed (they are kept to the program's packages)"}, nil
	}
	if err != nil {
		return nil, err
	}
	budget := o.LiteralBudget
	if budget == 0 {
		budget = DefaultLiteralBudget
	}
	s := &literalScan{v: v, db: db, allowed: map[*dpkg.Package]map[*dpkg.Package]bool{}, done: map[string]bool{}, counted: map[string]bool{}}
	s.onPath = s.pathPrograms()
	scanned := map[string]bool{}
	var notes []string
	for round := 0; ; round++ {
		programs, libraries := v.Objects()
		s.adds = s.adds[:0]
		for i, obj := range append(programs, libraries...) {
			if !scanned[obj] {
				scanned[obj] = true
				// Program names are weaker evidence than paths: only the programs the build started with
				// (inputs, interpreters, traced ones) are searched for them, not the helpers found so.
				if err := s.scan(obj, round == 0 && i < len(programs)); err != nil {
					return nil, err
				}
			}
		}
		if len(s.adds) == 0 {
			break
		}
		for _, a := range s.adds {
			s.total += a.size
		}
		if s.total > budget {
			slices.SortFunc(s.adds, func(a, b literalAdd) int { return cmp.Compare(b.size, a.size) })
			var big []string
			for _, a := range s.adds[:min(10, len(s.adds))] {
				big = append(big, fmt.Sprintf("%s (%d KiB, %s)", a.path, a.size>>10, a.why))
			}
			return nil, fmt.Errorf("path literals would add %d MiB, more than the budget of %d MiB (--literal-budget, or --no-rule literals); the largest: %s",
				s.total>>20, budget>>20, strings.Join(big, "; "))
		}
		// One note per literal: a directory literal may bring hundreds of files.
		var order []string
		count, bytes := map[string]int{}, map[string]int64{}
		first := map[string]string{}
		for _, a := range s.adds {
			if err := v.AddRootPath(a.path, ruleOrigin("literals", a.why, a.by)); err != nil {
				return nil, fmt.Errorf("adding %s (%s): %w", a.path, a.why, err)
			}
			if count[a.why] == 0 {
				order, first[a.why] = append(order, a.why), a.path
			}
			count[a.why]++
			bytes[a.why] += a.size
		}
		for _, why := range order {
			if count[why] == 1 {
				notes = append(notes, "added "+first[why]+": "+why)
			} else {
				notes = append(notes, fmt.Sprintf("added %d files (%d KiB) such as %s: %s", count[why], bytes[why]>>10, first[why], why))
			}
		}
	}
	return notes, nil
}

// pathPrograms lists the executables of the root's PATH directories.
func (s *literalScan) pathPrograms() map[string]string {
	out := map[string]string{}
	for _, dir := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		l, err := s.v.Lookup(dir)
		if err != nil || !l.Mode.IsDir() {
			continue
		}
		ents, err := fs.ReadDir(s.v.Root(), fsName(l.RealPath))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if _, ok := out[e.Name()]; !ok && (e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0) {
				out[e.Name()] = dir + "/" + e.Name()
			}
		}
	}
	return out
}

// allowedFor is the set of packages whose files a literal of an object of package p may bring in.
func (s *literalScan) allowedFor(p *dpkg.Package) map[*dpkg.Package]bool {
	if a, ok := s.allowed[p]; ok {
		return a
	}
	start := append([]*dpkg.Package{p}, s.db.Direct(p, "Recommends", "Suggests")...)
	a := map[*dpkg.Package]bool{}
	for _, q := range start {
		for _, r := range s.db.Relations(q, "Depends", "Pre-Depends") {
			a[r] = true
		}
	}
	s.allowed[p] = a
	return a
}

// scan searches the object obj (a root path) for literals.
func (s *literalScan) scan(obj string, program bool) error {
	l, err := s.v.Lookup(obj)
	if err != nil {
		return nil
	}
	owner := s.db.Owner(l.RealPath)
	if owner == nil {
		return nil
	}
	ra, size, done, ok := openRoot(s.v, l.RealPath)
	if !ok {
		return nil
	}
	defer done()
	var abs, names []string
	var head [2]byte
	if n, _ := ra.ReadAt(head[:], 0); n == 2 && string(head[:]) == "#!" {
		if size > maxScriptText {
			return nil
		}
		text := make([]byte, size)
		if _, err := ra.ReadAt(text, 0); err != nil && err != io.EOF {
			return nil
		}
		abs, names = scriptWords(text)
	} else {
		var isName func(string) bool
		if program {
			isName = func(n string) bool { _, ok := s.onPath[n]; return ok }
		}
		abs, names = elfStrings(ra, size, isName)
	}
	allowed := s.allowedFor(owner)
	for _, lit := range abs {
		if (lit == "/bin/sh" || lit == "/usr/bin/sh") && path.Base(l.RealPath) != "libc.so.6" {
			// The system shell, which programs run commands with (its package is essential: nobody depends
			// on it). glibc's own literal is left to the shell rule, which looks at what programs import.
			s.consider(lit, obj, nil, fmt.Sprintf("%s runs commands with %s", obj, lit), false)
			continue
		}
		s.consider(lit, obj, allowed, fmt.Sprintf("path literal %q in %s (package %s)", lit, obj, owner.ID()), true)
	}
	if len(names) > 0 {
		// A program named bare must come from the object's package, from a package that one names itself
		// (tar suggests xz-utils), or from what a package it recommends depends on (gpg recommends gnupg,
		// which depends on gpg-agent): not from anywhere in its dependency tree.
		near := map[*dpkg.Package]bool{owner: true}
		for _, q := range s.db.Direct(owner, "Depends", "Pre-Depends", "Recommends", "Suggests") {
			near[q] = true
		}
		for _, q := range s.db.Direct(owner, "Recommends") {
			for _, r := range s.db.Direct(q, "Depends", "Pre-Depends") {
				near[r] = true
			}
		}
		for _, name := range names {
			if exe, ok := s.onPath[name]; ok && exe != obj {
				s.consider(exe, obj, near, fmt.Sprintf("%s names the program %q, which is %s", obj, name, exe), false)
			}
		}
	}
	return nil
}

// owned reports whether p (a root path) belongs to one of the allowed packages (any package when allowed is
// nil).
func (s *literalScan) owned(p string, allowed map[*dpkg.Package]bool) bool {
	owners := s.db.Owners(p)
	if allowed == nil {
		return len(owners) > 0
	}
	return slices.ContainsFunc(owners, func(q *dpkg.Package) bool { return allowed[q] })
}

// consider queues the literal lit if it exists in the root and belongs to an allowed package: a file, or a
// directory's files that do. A literal naming nothing may be a stem ("/usr/share/misc/magic" for
// magic.mgc): the files of its directory named after it plus a suffix are taken instead.
func (s *literalScan) consider(lit, by string, allowed map[*dpkg.Package]bool, why string, stem bool) {
	lit = path.Clean(lit)
	if s.done[lit] || under(lit, literalNever) || literalSecret(lit) {
		return
	}
	s.done[lit] = true
	if e, ok := s.v.Entry(lit); ok && e.Kind != KindDir {
		return // already in the image
	}
	// A literal may be a stem the program adds a suffix to (libmagic's "/usr/share/misc/magic" for
	// magic.mgc), whether or not it names something itself.
	if stem {
		s.considerStem(lit, by, allowed, why)
	}
	l, err := s.v.Lookup(lit)
	if err != nil {
		return
	}
	if under(l.RealPath, literalNever) || literalSecret(l.RealPath) || multiarchLibDir(path.Dir(l.RealPath)) && strings.HasSuffix(path.Dir(l.RealPath), "/gconv") {
		return
	}
	if !l.Mode.IsDir() {
		if s.owned(lit, allowed) && l.Mode.IsRegular() {
			s.queue(lit, by, why)
		}
		return
	}
	if slices.Contains(literalNotTrees, lit) || slices.Contains(literalNotTrees, l.RealPath) || multiarchLibDir(l.RealPath) ||
		interpreterTree(lit) || interpreterTree(l.RealPath) {
		return
	}
	_ = fs.WalkDir(s.v.Root(), fsName(l.RealPath), func(name string, d fs.DirEntry, err error) error {
		p := "/" + name
		switch {
		case err != nil:
			return nil
		case d.IsDir() && (under(p, literalNever) || multiarchLibDir(p)):
			return fs.SkipDir
		case d.IsDir() || literalSecret(p) || s.done[p]:
			return nil
		case (d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0) && s.owned(p, allowed):
			if fl, err := s.v.Lookup(p); err != nil || !fl.Mode.IsRegular() {
				return nil // a link to nothing, to a directory or to a device (a unit masked to /dev/null)
			}
			if _, in := s.v.Entry(p); !in {
				s.done[p] = true
				s.queue(p, by, why)
			}
		}
		return nil
	})
}

// considerStem takes the files of lit's directory whose names are lit's name, a dot and a suffix.
func (s *literalScan) considerStem(lit, by string, allowed map[*dpkg.Package]bool, why string) {
	dir, base := path.Split(lit)
	l, err := s.v.Lookup(dir)
	if err != nil || !l.Mode.IsDir() || base == "" || under(l.RealPath, literalNever) {
		return
	}
	ents, err := fs.ReadDir(s.v.Root(), fsName(l.RealPath))
	if err != nil {
		return
	}
	for _, e := range ents {
		if rest, ok := strings.CutPrefix(e.Name(), base); ok && strings.HasPrefix(rest, ".") && !e.IsDir() {
			p := path.Join(dir, e.Name())
			if !s.done[p] && s.owned(p, allowed) && !literalSecret(p) {
				s.done[p] = true
				if fl, err := s.v.Lookup(p); err == nil && fl.Mode.IsRegular() {
					s.queue(p, by, why+", as "+e.Name())
				}
			}
		}
	}
}

// queue records p to add, counting the size of the file it leads to once.
func (s *literalScan) queue(p, by, why string) {
	var size int64
	if l, err := s.v.Lookup(p); err == nil && !s.counted[l.RealPath] {
		s.counted[l.RealPath] = true
		if _, in := s.v.Entry(l.RealPath); !in {
			if fi, err := fs.Stat(s.v.Root(), fsName(l.RealPath)); err == nil {
				size = fi.Size()
			}
		}
	}
	s.adds = append(s.adds, literalAdd{path: p, size: size, why: why, by: by})
}
