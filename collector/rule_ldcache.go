package collector

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/scratchpack/scratchpack/elfdeps"
)

// ldcacheRule gives the image the loader configuration its libraries need: when the closure holds a
// library the root's loader reaches only through /etc/ld.so.cache (a /usr/local/lib library, an
// ld.so.conf.d vendor directory), the image gets /etc/ld.so.conf naming the root's configured directories
// it holds and the /etc/ld.so.cache that glibc's `ldconfig -r IMAGE` would write from them; a musl
// library reached only through the root's /etc/ld-musl-ARCH.path brings that file. A closure that needs
// neither gets neither. It runs last, over the finished tree.
type ldcacheRule struct{}

func (ldcacheRule) Name() string { return "ldcache" }

func (ldcacheRule) Summary() string {
	return "/etc/ld.so.conf and the /etc/ld.so.cache ldconfig would write for the image (musl: /etc/ld-musl-ARCH.path), when a library is reached only through the root's cache"
}

// ldcacheGenerator names the writer in a cache when the root has no cache of its own to take ldconfig's
// generator text from.
const ldcacheGenerator = "scratchpack"

func (ldcacheRule) Apply(v View, _ RuleOptions) ([]string, error) {
	var notes []string
	var glibc []LoaderNeed
	for _, n := range v.LoaderNeeds() {
		switch n.Flavor {
		case elfdeps.FlavorGlibc:
			glibc = append(glibc, n)
		case elfdeps.FlavorMusl:
			file := elfdeps.MuslPathFile(n.Interp)
			why := fmt.Sprintf("musl's %s finds %s only through it", n.Interp, strings.Join(n.Libraries, ", "))
			if err := v.AddRootPath(file, ruleOrigin("ldcache", why, n.Libraries[0])); err != nil {
				return nil, err
			}
			notes = append(notes, "added "+file+": "+why)
		}
	}
	if len(glibc) == 0 {
		return notes, nil
	}
	first := glibc[0]
	conf, system, err := v.LoaderDirs(first.Interp)
	if err != nil {
		return nil, fmt.Errorf("reading the directories of %s: %w", first.Interp, err)
	}
	// The configured directories the image holds, in the root's order: the image's cache then ranks its
	// libraries as the root's cache does.
	var dirs []string
	for _, d := range conf {
		if e, ok := v.Entry(d); ok && e.Kind == KindDir {
			dirs = append(dirs, d)
		}
	}
	var libs []string
	for _, n := range glibc {
		libs = append(libs, n.Libraries...)
	}
	why := "the loader finds " + strings.Join(libs, ", ") + " only through the root's ld.so.cache"
	o := ruleOrigin("ldcache", why, libs[0])

	generator := ldcacheGenerator
	if data, err := v.ReadRootFile("/etc/ld.so.cache"); err == nil {
		if c, err := elfdeps.ParseLDCache(data); err == nil && c.Generator != "" {
			generator = c.Generator
		}
	}
	var order binary.ByteOrder = binary.LittleEndian
	if first.Data == elf.ELFDATA2MSB {
		order = binary.BigEndian
	}
	for _, f := range []string{"/etc/ld.so.conf", "/etc/ld.so.cache"} {
		if _, ok := v.Entry(f); ok {
			// A user's own (--add) wins, and the two must agree: leave both alone.
			return append(notes, "kept the image's own "+f+"; "+why), nil
		}
	}
	c, err := elfdeps.LDConfig{Dirs: append(slices.Clone(dirs), system...), Machine: first.Machine, Generator: generator}.Build(v.TreeFS())
	if err != nil {
		return nil, err
	}
	text := "# Written by scratchpack: the directories of the root's ld.so.conf that this image holds.\n" +
		strings.Join(dirs, "\n") + "\n"
	if _, err := v.AddData("/etc/ld.so.conf", []byte(text), 0o644, o); err != nil {
		return nil, err
	}
	if _, err := v.AddData("/etc/ld.so.cache", c.Marshal(order), 0o644, o); err != nil {
		return nil, err
	}
	return append(notes, fmt.Sprintf("added /etc/ld.so.conf (%s) and /etc/ld.so.cache (%d libraries, as ldconfig -r would write it): %s",
		strings.Join(dirs, ", "), len(c.Entries), why)), nil
}
