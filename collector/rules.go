package collector

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
)

// A Rule adds what a program loads at run time without naming it in DT_NEEDED, decided from what the closure
// holds and imports. Every rule is small, named, listed by `scratchpack rules`, and can be switched off.
type Rule struct {
	Name    string
	Summary string
	apply   func(p *Planner, o RuleOptions) ([]string, error)
}

// RuleOptions tunes the rules.
type RuleOptions struct {
	// Disabled are rule names not to apply (--no-rule).
	Disabled []string
	// Gconv is "auto" (the configuration and common modules), "all", or a comma-separated list of module
	// names (UTF-16,ISO8859-2).
	Gconv string
	// Locales are locale names to add (--locale), e.g. C.UTF-8 or de_DE.UTF-8.
	Locales []string
	// Base are the base-file options (accounts, certificates, time zones).
	Base BaseFiles
}

// Rules returns every rule in the order they apply.
func Rules() []Rule {
	return []Rule{
		{"accounts", "/etc/passwd and /etc/group with root, nobody and the --user: getpwnam, getpwuid, initgroups", applyAccounts},
		{"nsswitch", "/etc/nsswitch.conf: files for accounts, files then dns for hosts", applyFixed(nsswitchFile)},
		{"hosts", "/etc/hosts: localhost without DNS", applyFixed(hostsFile)},
		{"tmp", "/tmp with mode 1777", applyTmp},
		{"certs", "the CA bundle /etc/ssl/certs/ca-certificates.crt (+ the paths other TLS builds read) when libssl, libgnutls, libnss3, libmbedtls, libwolfssl or libcurl is in (--certs)", applyCerts},
		{"tzdata", "/usr/share/zoneinfo, with --tzdata", applyTZData},
		{"nss-modules", "libnss_NAME.so.2 for every source nsswitch.conf names, as glibc dlopens them (files and dns are built into glibc >= 2.34)", applyNSSModules},
		{"libgcc_s", "libgcc_s.so.1, which glibc dlopens to unwind for pthread_cancel, pthread_exit and backtrace, when the closure imports them", applyLibgccS},
		{"gconv", "glibc's gconv-modules configuration and converter modules when the closure imports iconv_open (--gconv auto|all|LIST)", applyGconv},
		{"openssl", "OpenSSL 3's provider (ossl-modules) and engine directories and openssl.cnf when libcrypto.so.3 is in", applyOpenSSL},
		{"locale", "locale data for each --locale NAME (/usr/lib/locale/NAME or the locale archive)", applyLocale},
	}
}

// ApplyRules applies every rule not disabled, in order, and returns the notes saying what each added and why.
func (p *Planner) ApplyRules(o RuleOptions) ([]string, error) {
	rules := Rules()
	for _, d := range o.Disabled {
		if !slices.ContainsFunc(rules, func(r Rule) bool { return r.Name == d }) {
			return nil, fmt.Errorf("--no-rule %s: no such rule (see `scratchpack rules`)", d)
		}
	}
	var notes []string
	for _, r := range rules {
		if slices.Contains(o.Disabled, r.Name) {
			continue
		}
		n, err := r.apply(p, o)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", r.Name, err)
		}
		for _, line := range n {
			notes = append(notes, r.Name+": "+line)
		}
	}
	return notes, nil
}

// ruleWhy is the reason recorded on a file a rule adds.
func ruleWhy(rule, because string) string { return fmt.Sprintf("%s rule: %s", rule, because) }

// addData adds a generated file unless the image already has one at that path (a user's --add wins).
func (p *Planner) addData(file, content, why string) (bool, error) {
	if p.tree.Get(file) != nil {
		return false, nil
	}
	return true, p.tree.Add(Entry{Path: file, Kind: KindFile, Mode: 0o644, Data: []byte(content), Why: []string{why}})
}

func applyFixed(f struct{ path, content, why string }) func(*Planner, RuleOptions) ([]string, error) {
	return func(p *Planner, _ RuleOptions) ([]string, error) {
		added, err := p.addData(f.path, f.content, f.why)
		if err != nil || added {
			return nil, err
		}
		return []string{f.path + ": kept the one given"}, nil
	}
}

func applyAccounts(p *Planner, o RuleOptions) ([]string, error) {
	passwd, group := p.accounts(o.Base.User)
	var notes []string
	for _, f := range []struct{ path, content, why string }{
		{"/etc/passwd", passwd, "account names for getpwnam/getpwuid (root, nobody" + userNote(o.Base.User) + ")"},
		{"/etc/group", group, "group names for getgrnam/getgrgid"},
	} {
		added, err := p.addData(f.path, f.content, ruleWhy("accounts", f.why))
		if err != nil {
			return nil, err
		}
		if !added {
			notes = append(notes, f.path+": kept the one given")
		}
	}
	return notes, nil
}

func applyTmp(p *Planner, _ RuleOptions) ([]string, error) {
	return nil, p.tree.Add(Entry{Path: "/tmp", Kind: KindDir, Mode: 0o777 | os.ModeSticky, Why: []string{ruleWhy("tmp", "scratch space (mode 1777)")}})
}

// glibcLibc returns the image path of glibc's libc.so.6 in the closure, or "".
func (p *Planner) glibcLibc() string {
	for _, lib := range p.Libraries {
		if path.Base(lib) == "libc.so.6" {
			return lib
		}
	}
	return ""
}

// importers returns the closure objects (programs and libraries) that import any of symbols, and which
// symbol each imports first.
func (p *Planner) importers(symbols ...string) (who []string, sym []string) {
	for _, obj := range append(slices.Clone(p.programPaths), p.Libraries...) {
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

// dlopen adds what glibc maps when it dlopens name (searched from the first program's view), with reason
// why; via is the image path of what makes glibc load it (for --explain).
func (p *Planner) dlopen(name, why, via string) ([]string, error) {
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
	for _, o := range res.Objects {
		from := o.NeededBy
		if o.Name == name {
			from = via
		}
		if err := p.addResolved(o.Path, o.RealPath, o.Links, why, from); err != nil {
			return nil, err
		}
		if !slices.Contains(p.Libraries, o.Path) {
			p.Libraries = append(p.Libraries, o.Path)
		}
		added = append(added, o.Path)
	}
	return added, nil
}

// nssBuiltin are the NSS sources glibc 2.34 and later carry inside libc.so.6.
var nssBuiltin = []string{"files", "dns"}

func applyNSSModules(p *Planner, _ RuleOptions) ([]string, error) {
	libc := p.glibcLibc()
	if libc == "" {
		return nil, nil
	}
	conf := p.tree.Resolve("/etc/nsswitch.conf")
	if conf == nil {
		return nil, nil
	}
	data, err := readEntry(conf)
	if err != nil {
		return nil, err
	}
	builtin := nssBuiltin
	if !p.glibcAtLeast234(libc) {
		builtin = nil
	}
	var notes []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		db, sources, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, src := range strings.Fields(sources) {
			if strings.HasPrefix(src, "[") || strings.HasSuffix(src, "]") || strings.Contains(src, "=") {
				continue // an action such as [NOTFOUND=return]
			}
			if slices.Contains(builtin, src) || seen[src] {
				continue
			}
			seen[src] = true
			mod := "libnss_" + src + ".so.2"
			added, err := p.dlopen(mod, ruleWhy("nss-modules", fmt.Sprintf("nsswitch.conf line %q", strings.TrimSpace(line))), "/etc/nsswitch.conf")
			if err != nil {
				notes = append(notes, fmt.Sprintf("%s (for %q) is not in the root: glibc skips a missing module, so lookups through it will fail", mod, strings.TrimSpace(db)))
				continue
			}
			notes = append(notes, fmt.Sprintf("added %s for %q", strings.Join(added, ", "), strings.TrimSpace(line)))
		}
	}
	return notes, nil
}

// glibcAtLeast234 reports whether the libc at image path lib defines symbol version GLIBC_2.34 (when files
// and dns moved into libc).
func (p *Planner) glibcAtLeast234(lib string) bool {
	e := p.tree.Resolve(lib)
	if e == nil {
		return true
	}
	data, err := readEntry(e)
	return err != nil || bytes.Contains(data, []byte("GLIBC_2.34\x00"))
}

func readEntry(e *Entry) ([]byte, error) {
	if e.Source == "" {
		return e.Data, nil
	}
	return os.ReadFile(e.Source)
}

func applyLibgccS(p *Planner, _ RuleOptions) ([]string, error) {
	if p.glibcLibc() == "" || slices.ContainsFunc(p.Libraries, func(l string) bool { return path.Base(l) == "libgcc_s.so.1" }) {
		return nil, nil
	}
	who, sym := p.importers("pthread_cancel", "pthread_exit", "backtrace")
	if len(who) == 0 {
		return nil, nil
	}
	why := fmt.Sprintf("glibc dlopens it to unwind: %s imports %s", who[0], sym[0])
	added, err := p.dlopen("libgcc_s.so.1", ruleWhy("libgcc_s", why), who[0])
	if err != nil {
		return []string{"libgcc_s.so.1 is not in the root: " + why + ", which will abort at run time"}, nil
	}
	return []string{fmt.Sprintf("added %s: %s", strings.Join(added, ", "), why)}, nil
}

// gconvCommon are the converters added by --gconv auto (glibc builds UTF-8, UCS-2/4, ASCII and
// ISO-8859-1's internal forms in; these are the other ones programs most often ask for).
var gconvCommon = []string{"UTF-16", "UTF-32", "UTF-7", "UNICODE", "ISO8859-2", "ISO8859-15", "CP1252", "IBM850", "EUC-JP", "SJIS", "GBK", "BIG5"}

func applyGconv(p *Planner, o RuleOptions) ([]string, error) {
	libc := p.glibcLibc()
	if libc == "" {
		return nil, nil
	}
	who, _ := p.importers("iconv_open")
	if len(who) == 0 && (o.Gconv == "" || o.Gconv == "auto") {
		return nil, nil // an explicit --gconv list or "all" applies even without an importer
	}
	l, err := p.resolvers[0].Lookup(libc)
	if err != nil {
		return nil, err
	}
	dir := path.Join(path.Dir(l.RealPath), "gconv")
	because := "--gconv " + o.Gconv
	if len(who) > 0 {
		because = who[0] + " imports iconv_open"
	}
	why := ruleWhy("gconv", because)
	var notes []string
	for _, cfg := range []string{"gconv-modules", "gconv-modules.cache", "gconv-modules.d"} {
		if _, err := p.resolvers[0].Lookup(path.Join(dir, cfg)); err != nil {
			continue
		}
		if err := p.AddRootPath(path.Join(dir, cfg), why); err != nil {
			return nil, err
		}
	}
	var modules []string
	switch o.Gconv {
	case "all":
		if err := p.AddRootPath(dir, why); err != nil {
			return nil, err
		}
		return []string{fmt.Sprintf("added all of %s: %s", dir, because)}, nil
	case "", "auto":
		modules = gconvCommon
	default:
		modules = strings.Split(o.Gconv, ",")
	}
	var added, missing []string
	for _, m := range modules {
		m = strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(m)), ".SO")
		file := path.Join(dir, m+".so")
		if _, err := p.resolvers[0].Lookup(file); err != nil {
			missing = append(missing, m)
			continue
		}
		if err := p.AddRootPath(file, why); err != nil {
			return nil, err
		}
		added = append(added, m)
	}
	notes = append(notes, fmt.Sprintf("added the gconv configuration and %s from %s: %s", strings.Join(added, ", "), dir, because))
	if len(missing) > 0 {
		if o.Gconv != "" && o.Gconv != "auto" {
			return nil, fmt.Errorf("--gconv: no module %s in %s", strings.Join(missing, ", "), dir)
		}
		notes = append(notes, "not in the root: "+strings.Join(missing, ", "))
	}
	return notes, nil
}

func applyOpenSSL(p *Planner, _ RuleOptions) ([]string, error) {
	var libcrypto string
	for _, lib := range p.Libraries {
		if path.Base(lib) == "libcrypto.so.3" {
			libcrypto = lib
		}
	}
	if libcrypto == "" {
		return nil, nil
	}
	l, err := p.resolvers[0].Lookup(libcrypto)
	if err != nil {
		return nil, err
	}
	why := ruleWhy("openssl", libcrypto+" is in (it loads providers, engines and openssl.cnf at run time)")
	var added []string
	for _, cand := range []string{path.Join(path.Dir(l.RealPath), "ossl-modules"), path.Join(path.Dir(l.RealPath), "engines-3"), "/usr/lib/ssl/openssl.cnf", "/etc/ssl/openssl.cnf"} {
		if _, err := p.resolvers[0].Lookup(cand); err != nil {
			continue
		}
		if err := p.AddRootPath(cand, why); err != nil {
			return nil, err
		}
		added = append(added, cand)
	}
	if len(added) == 0 {
		return nil, nil
	}
	return []string{fmt.Sprintf("added %s: %s", strings.Join(added, ", "), why)}, nil
}

func applyLocale(p *Planner, o RuleOptions) ([]string, error) {
	var notes []string
	for _, name := range o.Locales {
		why := ruleWhy("locale", "--locale "+name)
		found := false
		for _, cand := range localeDirs(name) {
			if _, err := p.resolvers[0].Lookup(cand); err == nil {
				if err := p.AddRootPath(cand, why); err != nil {
					return nil, err
				}
				notes = append(notes, fmt.Sprintf("added %s for %s (set LANG=%s with --env)", cand, name, name))
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("--locale %s: none of %s is in the root (generate it with locale-gen)", name, strings.Join(localeDirs(name), ", "))
		}
	}
	return notes, nil
}

// localeDirs are where glibc looks for a locale: its own directory (with the codeset normalised as glibc
// does: "UTF-8" becomes "utf8"), else the locale archive.
func localeDirs(name string) []string {
	dirs := []string{"/usr/lib/locale/" + name}
	if lang, cs, ok := strings.Cut(name, "."); ok {
		norm := strings.ToLower(strings.ReplaceAll(cs, "-", ""))
		dirs = append(dirs, "/usr/lib/locale/"+lang+"."+norm)
	}
	return append(dirs, "/usr/lib/locale/locale-archive")
}

func applyCerts(p *Planner, o RuleOptions) ([]string, error) {
	switch o.Base.Certs {
	case "", "auto":
		if lib := p.tlsLibrary(); lib != "" {
			n, err := p.addCerts(ruleWhy("certs", "CA certificates because "+lib+" is in"))
			return []string{n}, err
		}
	case "always":
		n, err := p.addCerts(ruleWhy("certs", "CA certificates (--certs always)"))
		return []string{n}, err
	case "never":
	default:
		return nil, fmt.Errorf("--certs %q: want auto, always or never", o.Base.Certs)
	}
	return nil, nil
}

func applyTZData(p *Planner, o RuleOptions) ([]string, error) {
	if !o.Base.TZData {
		return nil, nil
	}
	if err := p.AddRootPath("/usr/share/zoneinfo", ruleWhy("tzdata", "--tzdata")); err != nil {
		return nil, fmt.Errorf("--tzdata: %w", err)
	}
	return []string{"added /usr/share/zoneinfo (--tzdata)"}, nil
}
