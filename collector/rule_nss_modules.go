package collector

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// nssModulesRule adds the NSS modules glibc dlopens for the sources the image's nsswitch.conf names.
type nssModulesRule struct{}

func (nssModulesRule) Name() string { return "nss-modules" }

func (nssModulesRule) Summary() string {
	return "libnss_NAME.so.2 for every source nsswitch.conf names, as glibc dlopens them (files and dns are built into glibc >= 2.34)"
}

// nssBuiltin are the NSS sources glibc 2.34 and later carry inside libc.so.6.
var nssBuiltin = []string{"files", "dns"}

func (nssModulesRule) Apply(v View, _ RuleOptions) ([]string, error) {
	libc := glibcLibc(v)
	if libc == "" {
		return nil, nil
	}
	data, err := v.ReadEntry("/etc/nsswitch.conf")
	if err != nil {
		return nil, nil // no nsswitch.conf in the image: glibc's defaults use only built-in sources
	}
	builtin := nssBuiltin
	if !glibcAtLeast234(v, libc) {
		builtin = nil
	}
	var notes []string
	seen := map[string]bool{}
	for _, s := range nssSources(data) {
		if slices.Contains(builtin, s.source) || seen[s.source] {
			continue
		}
		seen[s.source] = true
		mod := "libnss_" + s.source + ".so.2"
		o := ruleOrigin("nss-modules", fmt.Sprintf("nsswitch.conf line %q", s.line), "/etc/nsswitch.conf")
		added, err := v.Dlopen(mod, o)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s (for %q) is not in the root: glibc skips a missing module, so lookups through it will fail", mod, s.db))
			continue
		}
		notes = append(notes, fmt.Sprintf("added %s for %q", strings.Join(added, ", "), s.line))
	}
	return notes, nil
}

// nssSource is one service a database line of nsswitch.conf names.
type nssSource struct {
	db, source, line string
}

// nssSources reads nsswitch.conf as glibc does: "DB: SOURCE [ACTION] SOURCE...", '#' to the end of a line a
// comment, actions in brackets skipped. Only names that can be a module's (letters, digits, '_', '-', '.')
// are kept: anything else could not name libnss_NAME.so.2 safely.
func nssSources(data []byte) []nssSource {
	var out []nssSource
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		db, sources, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		inAction := false
		for _, src := range strings.Fields(sources) {
			switch {
			case strings.HasPrefix(src, "["):
				inAction = !strings.HasSuffix(src, "]")
				continue
			case inAction:
				inAction = !strings.HasSuffix(src, "]")
				continue
			case !validModuleName(src):
				continue
			}
			out = append(out, nssSource{db: strings.TrimSpace(db), source: src, line: strings.TrimSpace(line)})
		}
	}
	return out
}

func validModuleName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	})
}

// glibcAtLeast234 reports whether the libc at image path lib defines symbol version GLIBC_2.34 (when files
// and dns moved into libc).
func glibcAtLeast234(v View, lib string) bool {
	data, err := v.ReadEntry(lib)
	return err != nil || bytes.Contains(data, []byte("GLIBC_2.34\x00"))
}
