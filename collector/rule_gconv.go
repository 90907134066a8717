package collector

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// gconvRule adds glibc's gconv configuration and converter modules when the closure uses iconv.
type gconvRule struct{}

func (gconvRule) Name() string { return "gconv" }

func (gconvRule) Summary() string {
	return "glibc's gconv-modules configuration and converter modules when the closure imports iconv_open (--gconv auto|all|LIST)"
}

// gconvCommon are the charsets whose converters "auto" adds (glibc builds UTF-8, UCS-2/4 and ASCII in;
// these are the others programs most often ask for: the Unicode forms, the common 8-bit charsets of
// Western and Eastern Europe, Russia and Windows, and the main East Asian ones).
var gconvCommon = []string{"UTF-16", "UTF-32", "UTF-7", "UNICODE", "ISO-8859-1", "ISO-8859-2", "ISO-8859-5", "ISO-8859-15",
	"KOI8-R", "KOI8-U", "CP1250", "CP1251", "CP1252", "IBM850", "IBM437", "EUC-JP", "SHIFT_JIS", "EUC-KR", "GBK", "GB18030", "BIG5"}

// gconvConfig is what gconv-modules (and gconv-modules.d/*.conf) say: aliases of charset names and the
// module file that converts each charset.
type gconvConfig struct {
	alias   map[string]string   // ALIAS -> charset, both without "//"
	modules map[string][]string // charset -> module files (without ".so")
}

// readGconvConfig reads the configuration of the gconv directory dir of the root.
func readGconvConfig(v View, dir string) gconvConfig {
	c := gconvConfig{alias: map[string]string{}, modules: map[string][]string{}}
	files := []string{path.Join(dir, "gconv-modules")}
	if l, err := v.Lookup(path.Join(dir, "gconv-modules.d")); err == nil && l.Mode.IsDir() {
		if ents, err := fs.ReadDir(v.Root(), fsName(l.RealPath)); err == nil {
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), ".conf") {
					files = append(files, path.Join(dir, "gconv-modules.d", e.Name()))
				}
			}
		}
	}
	for _, f := range files {
		data, err := v.ReadRootFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			line, _, _ = strings.Cut(line, "#")
			fields := strings.Fields(line)
			switch {
			case len(fields) >= 3 && fields[0] == "alias":
				c.alias[strings.TrimSuffix(fields[1], "//")] = strings.TrimSuffix(fields[2], "//")
			case len(fields) >= 4 && fields[0] == "module":
				file := fields[3]
				for _, cs := range fields[1:3] {
					cs = strings.TrimSuffix(cs, "//")
					if cs != "INTERNAL" && !slices.Contains(c.modules[cs], file) {
						c.modules[cs] = append(c.modules[cs], file)
					}
				}
			}
		}
	}
	return c
}

// files returns the module files that convert the charset name (or an alias of it, as iconv_open takes
// it: any case), or name itself when it is a module's file name ("ISO8859-2").
func (c gconvConfig) files(name string) []string {
	n := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(name)), "//")
	n = strings.TrimSuffix(n, ".SO")
	if a, ok := c.alias[n]; ok {
		n = a
	}
	if f := c.modules[n]; len(f) > 0 {
		return f
	}
	for _, files := range c.modules {
		if slices.Contains(files, n) {
			return []string{n}
		}
	}
	return nil
}

func (gconvRule) Apply(v View, o RuleOptions) ([]string, error) {
	libc := glibcLibc(v)
	if libc == "" {
		return nil, nil
	}
	who, _ := v.Importers("iconv_open")
	if len(who) == 0 && (o.Gconv == "" || o.Gconv == "auto") {
		return nil, nil // an explicit list or "all" applies even without an importer
	}
	l, err := v.Lookup(libc)
	if err != nil {
		return nil, err
	}
	dir := path.Join(path.Dir(l.RealPath), "gconv")
	because, by := "gconv modules asked for: "+o.Gconv, ""
	if len(who) > 0 {
		because, by = who[0]+" imports iconv_open", who[0]
	}
	origin := ruleOrigin("gconv", because, by)
	var notes []string
	for _, cfg := range []string{"gconv-modules", "gconv-modules.cache", "gconv-modules.d"} {
		if _, err := v.Lookup(path.Join(dir, cfg)); err != nil {
			continue
		}
		if err := v.AddRootPath(path.Join(dir, cfg), origin); err != nil {
			return nil, err
		}
	}
	var names []string
	switch o.Gconv {
	case "all":
		if err := v.AddRootPath(dir, origin); err != nil {
			return nil, err
		}
		return []string{fmt.Sprintf("added all of %s: %s", dir, because)}, nil
	case "", "auto":
		names = gconvCommon
	default:
		names = strings.Split(o.Gconv, ",")
	}
	cfg := readGconvConfig(v, dir)
	var added, missing []string
	for _, name := range names {
		files := cfg.files(name)
		if len(files) == 0 {
			missing = append(missing, strings.TrimSpace(name))
			continue
		}
		for _, f := range files {
			file := path.Join(dir, f+".so")
			if err := v.AddRootPath(file, origin); err != nil {
				return nil, err
			}
			if !slices.Contains(added, f) {
				added = append(added, f)
			}
		}
	}
	what := "the gconv configuration"
	if len(added) > 0 {
		what += " and " + strings.Join(added, ", ")
	}
	notes = append(notes, fmt.Sprintf("added %s from %s: %s", what, dir, because))
	if len(missing) > 0 {
		if o.Gconv != "" && o.Gconv != "auto" {
			return nil, fmt.Errorf("no gconv module %s in %s", strings.Join(missing, ", "), dir)
		}
		notes = append(notes, "not in the root: "+strings.Join(missing, ", "))
	}
	return notes, nil
}
