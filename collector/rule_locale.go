package collector

import (
	"fmt"
	"io/fs"
	"strings"
)

// localeRule adds the data of each locale asked for.
type localeRule struct{}

func (localeRule) Name() string { return "locale" }

func (localeRule) Summary() string {
	return "locale data for each --locale NAME (/usr/lib/locale/NAME or the locale archive)"
}

func (localeRule) Apply(v View, o RuleOptions) ([]string, error) {
	var notes []string
	for _, name := range o.Locales {
		origin := ruleOrigin("locale", "locale "+name+" asked for", "")
		found := false
		for _, cand := range localeDirs(name) {
			if _, err := v.Lookup(cand); err == nil {
				if err := v.AddRootPath(cand, origin); err != nil {
					return nil, err
				}
				if err := addLinkTargets(v, cand, origin); err != nil {
					return nil, err
				}
				notes = append(notes, fmt.Sprintf("added %s for %s (set LANG=%s in the image's environment)", cand, name, name))
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("locale %s: none of %s is in the root (generate it with locale-gen)", name, strings.Join(localeDirs(name), ", "))
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

// addLinkTargets adds what the symbolic links under dir lead to: Debian's locales-all links a locale's
// LC_COLLATE or LC_CTYPE to another locale's file, which must come too.
func addLinkTargets(v View, dir string, o Origin) error {
	l, err := v.Lookup(dir)
	if err != nil || !l.Mode.IsDir() {
		return nil
	}
	var links []string
	err = fs.WalkDir(v.Root(), fsName(l.RealPath), func(name string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink != 0 {
			links = append(links, "/"+name)
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, link := range links {
		if _, err := v.Lookup(link); err != nil {
			continue // dangling in the root too
		}
		if err := v.AddRootPath(link, o); err != nil {
			return err
		}
	}
	return nil
}

// rootFiles returns the paths of the files and links under the root's directory dir (resolved), sorted.
func rootFiles(v View, dir string) ([]string, error) {
	var out []string
	err := fs.WalkDir(v.Root(), fsName(dir), func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, "/"+name)
		}
		return nil
	})
	return out, err
}
