package collector

import (
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"
)

// The Perl, Ruby, Tcl and PHP interpreters: what each loads at start-up, found from its own compiled-in
// directories, and (Perl, Ruby) the closure of a #! script's use/require statements through its search
// path. Python has rule_python.go.

// modFollower follows a language's module statements through a search path.
type modFollower struct {
	v       View
	rule    string
	path    []string                         // search directories, in order
	files   func(dir, name string) []string  // candidate files of module name in dir, best first
	extra   func(file string) []string       // files that come with a found module file (XS objects)
	imports func(text []byte) []modStatement // the module names a source loads
	done    map[string]bool
	missing []string
	dynamic []string
	added   int
}

type modStatement struct {
	name    string
	line    int
	text    string
	dynamic bool // a computed name
}

// find returns the first candidate file of name on the path.
func (m *modFollower) find(name string, dirs []string) string {
	for _, d := range append(slices.Clone(dirs), m.path...) {
		for _, c := range m.files(d, name) {
			if l, err := m.v.Lookup(c); err == nil && l.Mode.IsRegular() {
				return c
			}
		}
	}
	return ""
}

// follow adds module name, what comes with it, and transitively what it loads.
func (m *modFollower) follow(name string, dirs []string, o Origin, script bool) error {
	if m.done[name] {
		return nil
	}
	m.done[name] = true
	file := m.find(name, dirs)
	if file == "" {
		if script && !slices.Contains(m.missing, name) {
			m.missing = append(m.missing, name)
		}
		return nil
	}
	if err := m.v.AddRootPath(file, o); err != nil {
		return err
	}
	m.added++
	if m.extra != nil {
		for _, x := range m.extra(file) {
			if err := m.v.AddRootPath(x, o); err != nil {
				return err
			}
		}
	}
	text, err := m.v.ReadRootFile(file)
	if err != nil || isELFText(text) {
		return nil
	}
	return m.source(file, text, dirs, false)
}

// source follows the statements of one source file.
func (m *modFollower) source(file string, text []byte, dirs []string, script bool) error {
	for _, st := range m.imports(text) {
		if st.dynamic {
			if script {
				m.dynamic = append(m.dynamic, fmt.Sprintf("%s:%d", file, st.line))
			}
			continue
		}
		o := ruleOrigin(m.rule, fmt.Sprintf("`%s` in %s:%d", st.text, file, st.line), file)
		if err := m.follow(st.name, dirs, o, script); err != nil {
			return err
		}
	}
	return nil
}

func isELFText(b []byte) bool { return len(b) >= 4 && string(b[:4]) == "\x7fELF" }

// scriptsOf returns the #! scripts of the image whose interpreter line contains word.
func scriptsOf(v View, word string) []string {
	var out []string
	for _, s := range v.Scripts() {
		if strings.Contains(s.Interp, word) {
			out = append(out, s.Path)
		}
	}
	return out
}

// interpreters returns the real paths of the image's programs whose file name matches re.
func interpreters(v View, re *regexp.Regexp) []string {
	programs, _ := v.Objects()
	var out []string
	for _, p := range programs {
		if l, err := v.Lookup(p); err == nil && re.MatchString(path.Base(l.RealPath)) && !slices.Contains(out, l.RealPath) {
			out = append(out, l.RealPath)
		}
	}
	return out
}

// literalsOf returns the absolute path literals of a root ELF file's read-only data.
func literalsOf(v View, p string) []string {
	l, err := v.Lookup(p)
	if err != nil {
		return nil
	}
	ra, size, done, ok := openRoot(v, l.RealPath)
	if !ok {
		return nil
	}
	defer done()
	abs, _ := elfStrings(ra, size, nil)
	return abs
}

// openRoot opens the root's regular file at the resolved path real for reading at offsets.
func openRoot(v View, real string) (ra io.ReaderAt, size int64, done func(), ok bool) {
	f, err := v.Root().Open(fsName(real))
	if err != nil {
		return nil, 0, nil, false
	}
	st, err := f.Stat()
	ra, isRA := f.(io.ReaderAt)
	if err != nil || !isRA {
		f.Close()
		return nil, 0, nil, false
	}
	return ra, st.Size(), func() { f.Close() }, true
}

// libraryNamed returns the closure's library whose file name starts with prefix, or "".
func libraryNamed(v View, prefix string) string {
	for _, lib := range v.Libraries() {
		if strings.HasPrefix(path.Base(lib), prefix) {
			return lib
		}
	}
	return ""
}

func (m *modFollower) notes(who string) []string {
	var out []string
	if len(m.dynamic) > 0 {
		out = append(out, "warning: loads by a computed name cannot be followed: "+strings.Join(m.dynamic, ", "))
	}
	if len(m.missing) > 0 {
		out = append(out, fmt.Sprintf("%s loads what is not on its search path: %s", who, strings.Join(m.missing, ", ")))
	}
	return append(out, fmt.Sprintf("%s: %d module files", who, m.added))
}

// ---- Perl ----------------------------------------------------------------------------------------------

type perlRule struct{}

func (perlRule) Name() string { return "perl" }

func (perlRule) Summary() string {
	return "Perl's core pragmas and the modules its #! scripts use or require (with their XS objects), through @INC as libperl has it compiled in"
}

var (
	perlBinary = regexp.MustCompile(`^perl(5[.\d]*)?$`)
	perlUse    = regexp.MustCompile(`(?m)(?:^|[;{\s])(use|no|require)\s+([A-Za-z_]\w*(?:::\w+)*)`)
	perlParent = regexp.MustCompile(`(?m)^\s*use\s+(?:parent|base)\s+(?:-norequire\s*,\s*)?(?:qw\s*[(/{\[]([^)/}\]]*)[)/}\]]|['"]([\w:]+)['"])`)
	perlDyn    = regexp.MustCompile(`(?m)\brequire\s+\$|eval\s*["']\s*(?:use|require)\s+\$`)
)

var perlSiteLib = regexp.MustCompile(`^/usr/local/share/perl/(\d+\.\d+\.\d+)$`)

// perlINC is @INC as Debian's perl computes it: /etc/perl, the site, vendor, perl-base, arch and private
// directories of its version (full: "5.36.0", read from the sitelib path compiled into it), then
// /usr/local/lib/site_perl.
func perlINC(triplet, full string) []string {
	short := full
	if parts := strings.Split(full, "."); len(parts) >= 2 {
		short = parts[0] + "." + parts[1]
	}
	lib := "/usr/lib/" + triplet
	return []string{"/etc/perl", "/usr/local/lib/" + triplet + "/perl/" + full, "/usr/local/share/perl/" + full,
		lib + "/perl5/" + short, "/usr/share/perl5", lib + "/perl-base", lib + "/perl/" + short, "/usr/share/perl/" + short,
		"/usr/local/lib/site_perl"}
}

func perlStatements(text []byte) []modStatement {
	src := string(text)
	// The code ends at __END__ or __DATA__; POD blocks are not code.
	for _, end := range []string{"\n__END__", "\n__DATA__"} {
		if i := strings.Index(src, end); i >= 0 {
			src = src[:i]
		}
	}
	var b strings.Builder
	inPod := false
	for _, line := range strings.Split(src, "\n") {
		switch {
		case strings.HasPrefix(line, "=cut"):
			inPod = false
			b.WriteString("\n")
			continue
		case len(line) > 1 && line[0] == '=' && line[1] >= 'a' && line[1] <= 'z':
			inPod = true
		}
		if inPod {
			b.WriteString("\n")
			continue
		}
		if i := strings.Index(line, "#"); i >= 0 && !strings.ContainsAny(line[:i], `'"`) {
			line = line[:i]
		}
		b.WriteString(line + "\n")
	}
	code := b.String()
	lineOf := lineIndex(code)
	var out []modStatement
	for _, m := range perlUse.FindAllStringSubmatchIndex(code, -1) {
		name := code[m[4]:m[5]]
		if len(name) > 1 && name[0] == 'v' && name[1] >= '0' && name[1] <= '9' {
			continue // use v5.36
		}
		out = append(out, modStatement{name: name, line: lineOf(m[0]), text: strings.TrimSpace(code[m[2]:m[5]])})
	}
	for _, m := range perlParent.FindAllStringSubmatchIndex(code, -1) {
		var names []string
		if m[2] >= 0 {
			names = strings.Fields(code[m[2]:m[3]])
		} else if m[4] >= 0 {
			names = []string{code[m[4]:m[5]]}
		}
		for _, n := range names {
			out = append(out, modStatement{name: n, line: lineOf(m[0]), text: strings.TrimSpace(code[m[0]:m[1]])})
		}
	}
	for _, m := range perlDyn.FindAllStringIndex(code, -1) {
		out = append(out, modStatement{line: lineOf(m[0]), dynamic: true})
	}
	return out
}

func (perlRule) Apply(v View, _ RuleOptions) ([]string, error) {
	perls := interpreters(v, perlBinary)
	if len(perls) == 0 {
		return nil, nil
	}
	// Debian's perl has libperl linked in statically; a perl linking libperl.so has the paths there.
	full, where := "", perls[0]
	for _, obj := range append(slices.Clone(perls), libraryNamed(v, "libperl.so.")) {
		for _, lit := range literalsOf(v, obj) {
			if m := perlSiteLib.FindStringSubmatch(lit); m != nil {
				full, where = m[1], obj
			}
		}
		if full != "" {
			break
		}
	}
	if full == "" {
		return []string{perls[0] + ": no compiled-in library directories found; modules are not followed"}, nil
	}
	libperl := where
	inc := perlINC(machineTriplet(v), full)
	m := &modFollower{v: v, rule: "perl", path: inc, done: map[string]bool{}, imports: perlStatements,
		files: func(dir, name string) []string {
			return []string{path.Join(dir, strings.ReplaceAll(name, "::", "/")+".pm")}
		},
	}
	m.extra = func(file string) []string { return perlXS(v, inc, file) }
	start := ruleOrigin("perl", "Perl's core pragmas", libperl)
	for _, mod := range []string{"strict", "warnings", "feature", "vars", "utf8", "constant", "Exporter", "Carp", "XSLoader", "Config"} {
		if err := m.follow(mod, nil, start, false); err != nil {
			return nil, err
		}
	}
	for _, script := range scriptsOf(v, "perl") {
		text, err := v.ReadRootFile(script)
		if err != nil {
			continue
		}
		if err := m.source(script, text, []string{path.Dir(script)}, true); err != nil {
			return nil, err
		}
	}
	if m.done["Encode"] {
		// Encode loads its encodings by name (Encode::Config maps each to Encode::Unicode, ::Byte, ::JP...).
		enc := ruleOrigin("perl", "Encode loads its encoding modules by name", libperl)
		for _, d := range inc {
			for _, sub := range []string{"Encode", "auto/Encode"} {
				if sl, err := v.Lookup(path.Join(d, sub)); err == nil && sl.Mode.IsDir() {
					if err := v.AddRootPath(path.Join(d, sub), enc); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return append([]string{"@INC " + strings.Join(inc, " ")}, m.notes("perl")...), nil
}

// perlXS returns the XS object (auto/NAME/NAME.so) and autoload files of the module file in an @INC
// directory, from whichever @INC directory holds them.
func perlXS(v View, inc []string, file string) []string {
	for _, d := range inc {
		rel, ok := strings.CutPrefix(file, d+"/")
		if !ok {
			continue
		}
		mod := strings.TrimSuffix(rel, ".pm")
		var out []string
		for _, d2 := range inc {
			auto := path.Join(d2, "auto", mod)
			if l, err := v.Lookup(auto); err == nil && l.Mode.IsDir() {
				out = append(out, auto)
			}
		}
		return out
	}
	return nil
}

// ---- Ruby ----------------------------------------------------------------------------------------------

type rubyRule struct{}

func (rubyRule) Name() string { return "ruby" }

func (rubyRule) Summary() string {
	return "Ruby's standard library and extensions (its rubylibdir and archdir), RubyGems' start-up files, and what its #! scripts require from vendor and site directories"
}

var (
	rubyBinary  = regexp.MustCompile(`^ruby\d[.\d]*$`)
	rubyRequire = regexp.MustCompile(`(?m)^[^#\n]*?\brequire(_relative)?\s*\(?\s*['"]([\w/.+-]+)['"]`)
	rubyDyn     = regexp.MustCompile(`(?m)^[^#\n]*?\brequire\s*\(?\s*[^'"\s(]`)
)

// rubyLoadPath is $LOAD_PATH as Debian's ruby computes it, for API version ver ("3.1.0").
func rubyLoadPath(triplet, ver string) []string {
	return []string{"/usr/local/lib/site_ruby/" + ver, "/usr/local/lib/" + triplet + "/site_ruby", "/usr/local/lib/site_ruby",
		"/usr/lib/ruby/vendor_ruby/" + ver, "/usr/lib/" + triplet + "/ruby/vendor_ruby/" + ver, "/usr/lib/ruby/vendor_ruby",
		"/usr/lib/ruby/" + ver, "/usr/lib/" + triplet + "/ruby/" + ver}
}

func (rubyRule) Apply(v View, _ RuleOptions) ([]string, error) {
	if len(interpreters(v, rubyBinary)) == 0 {
		return nil, nil
	}
	libruby := libraryNamed(v, "libruby-")
	if libruby == "" {
		return nil, nil
	}
	// libruby-3.1.so.3.1: API version 3.1.0.
	name := path.Base(libruby)
	mm := strings.TrimSuffix(strings.TrimPrefix(name, "libruby-"), ".so"+name[strings.Index(name, ".so")+3:])
	ver := mm + ".0"
	triplet := path.Base(path.Dir(libruby))
	lp := rubyLoadPath(triplet, ver)
	start := ruleOrigin("ruby", "Ruby's standard library and RubyGems, which it loads at start-up", libruby)
	var notes []string
	for _, d := range []string{"/usr/lib/ruby/" + ver, "/usr/lib/" + triplet + "/ruby/" + ver, "/usr/lib/ruby/gems/" + ver + "/specifications/default",
		"/usr/lib/ruby/vendor_ruby/rubygems"} {
		if l, err := v.Lookup(d); err == nil && l.Mode.IsDir() {
			if err := v.AddRootPath(d, start); err != nil {
				return nil, err
			}
			notes = append(notes, "added "+d)
		}
	}
	m := &modFollower{v: v, rule: "ruby", path: lp, done: map[string]bool{},
		files: func(dir, name string) []string {
			b := path.Join(dir, name)
			return []string{b, b + ".rb", b + ".so"}
		},
		imports: func(text []byte) []modStatement {
			var out []modStatement
			lineOf := lineIndex(text)
			for _, x := range rubyRequire.FindAllSubmatchIndex(text, -1) {
				out = append(out, modStatement{name: string(text[x[4]:x[5]]), line: lineOf(x[0]),
					text: strings.TrimSpace(string(text[x[0]:x[1]]))})
			}
			for _, x := range rubyDyn.FindAllIndex(text, -1) {
				out = append(out, modStatement{line: lineOf(x[0]), dynamic: true})
			}
			return out
		}}
	for _, script := range scriptsOf(v, "ruby") {
		text, err := v.ReadRootFile(script)
		if err != nil {
			continue
		}
		if err := m.source(script, text, []string{path.Dir(script)}, true); err != nil {
			return nil, err
		}
	}
	notes = append(notes, "$LOAD_PATH "+strings.Join(lp, " "))
	return append(notes, m.notes("ruby")...), nil
}

// ---- Tcl -----------------------------------------------------------------------------------------------

type tclRule struct{}

func (tclRule) Name() string { return "tcl" }

func (tclRule) Summary() string {
	return "Tcl's script library (init.tcl, encodings, messages, time zones) from the directory libtcl has compiled in"
}

var tclBinary = regexp.MustCompile(`^tclsh\d[.\d]*$`)

func (tclRule) Apply(v View, _ RuleOptions) ([]string, error) {
	if len(interpreters(v, tclBinary)) == 0 {
		return nil, nil
	}
	libtcl := libraryNamed(v, "libtcl")
	if libtcl == "" {
		return nil, nil
	}
	for _, lit := range literalsOf(v, libtcl) {
		if _, err := v.Lookup(path.Join(lit, "init.tcl")); err != nil {
			continue
		}
		if err := v.AddRootPath(lit, ruleOrigin("tcl", libtcl+" sources init.tcl from its library "+lit+" at start-up", libtcl)); err != nil {
			return nil, err
		}
		return []string{"added Tcl's library " + lit}, nil
	}
	return []string{libtcl + ": no compiled-in library directory with init.tcl in the root"}, nil
}

// ---- PHP -----------------------------------------------------------------------------------------------

type phpRule struct{}

func (phpRule) Name() string { return "php" }

func (phpRule) Summary() string {
	return "PHP's php.ini, its scanned conf.d files and the extensions they enable, from the directories the php binary has compiled in"
}

var (
	phpBinary = regexp.MustCompile(`^php\d[.\d]*$`)
	phpExtDir = regexp.MustCompile(`^/usr/lib/php/\d{8}$`)
	phpExtIni = regexp.MustCompile(`(?m)^\s*(?:zend_)?extension\s*=\s*"?([\w./-]+?)"?\s*$`)
)

func (phpRule) Apply(v View, _ RuleOptions) ([]string, error) {
	var notes []string
	for _, php := range interpreters(v, phpBinary) {
		lits := literalsOf(v, php)
		extDir, confDir := "", ""
		for _, lit := range lits {
			switch {
			case phpExtDir.MatchString(lit) && extDir == "":
				extDir = lit
			case strings.HasSuffix(lit, "/conf.d") && strings.HasPrefix(lit, "/etc/php/") && confDir == "":
				confDir = lit
			}
		}
		if confDir == "" {
			continue
		}
		o := ruleOrigin("php", php+" reads its configuration from "+path.Dir(confDir), php)
		var inis []string
		if _, err := v.Lookup(path.Join(path.Dir(confDir), "php.ini")); err == nil {
			inis = append(inis, path.Join(path.Dir(confDir), "php.ini"))
		}
		if l, err := v.Lookup(confDir); err == nil && l.Mode.IsDir() {
			files, err := rootFiles(v, l.RealPath)
			if err != nil {
				return nil, err
			}
			for _, f := range files {
				if strings.HasSuffix(f, ".ini") {
					inis = append(inis, path.Join(confDir, path.Base(f)))
				}
			}
		}
		var exts []string
		for _, ini := range inis {
			if err := v.AddRootPath(ini, o); err != nil {
				return nil, err
			}
			text, err := v.ReadRootFile(ini)
			if err != nil {
				continue
			}
			for _, m := range phpExtIni.FindAllStringSubmatch(string(text), -1) {
				ext := m[1]
				if !strings.HasPrefix(ext, "/") {
					if extDir == "" {
						continue
					}
					if !strings.HasSuffix(ext, ".so") {
						ext += ".so"
					}
					ext = path.Join(extDir, ext)
				}
				if _, err := v.Lookup(ext); err != nil {
					continue
				}
				eo := ruleOrigin("php", fmt.Sprintf("%s enables %s", ini, path.Base(ext)), ini)
				if err := v.AddRootPath(ext, eo); err != nil {
					return nil, err
				}
				exts = append(exts, strings.TrimSuffix(path.Base(ext), ".so"))
			}
		}
		notes = append(notes, fmt.Sprintf("added %d .ini files of %s and the extensions they enable: %s", len(inis), path.Dir(confDir), strings.Join(exts, ", ")))
		// Debian's PHP reads time zones from the system's database, not an embedded one.
		if _, err := v.Lookup("/usr/share/zoneinfo"); err == nil && slices.ContainsFunc(lits, func(l string) bool { return strings.HasPrefix(l, "/usr/share/zoneinfo/") }) {
			if err := v.AddRootPath("/usr/share/zoneinfo", ruleOrigin("php", php+" reads the system's time zones (date.timezone)", php)); err != nil {
				return nil, err
			}
			notes = append(notes, "added /usr/share/zoneinfo: "+php+" reads the system's time zones")
		}
	}
	return notes, nil
}
