package collector

import (
	"debug/elf"
	"strings"
	"testing"

	"github.com/scratchpack/scratchpack/elfdeps"
	"github.com/scratchpack/scratchpack/internal/elftest"
)

// literalRoot is a root with a dpkg database: app (Depends app-data, Suggests xz-utils) whose program holds
// path literals and program names, and an unrelated package.
func literalRoot(t *testing.T) map[string]any {
	rodata := "\x00/usr/share/app\x00/usr/share/other/x.dat\x00/etc/shadow\x00/usr/share\x00/etc/app.conf:/etc/app.d\x00" +
		"/usr/share/app/tmpl\x00helper\x00unxz\x00unrelated\x00/var/lib/app/private.key\x00"
	list := func(paths ...string) string { return strings.Join(paths, "\n") + "\n" }
	return map[string]any{
		synthInterp:                       elftest.Opts{Soname: "ld-linux-x86-64.so.2", Extra: []byte(synthSystemDirs)},
		"/lib/x86_64-linux-gnu/libc.so.6": elftest.Opts{Soname: "libc.so.6"},
		"/usr/bin/app": elftest.Opts{Type: elf.ET_EXEC, Interp: synthInterp, Needed: []string{"libc.so.6"},
			LoadFlags: elf.PF_R, Extra: []byte(rodata)},
		"/usr/bin/helper":           elftest.Opts{Type: elf.ET_EXEC, Interp: synthInterp, Needed: []string{"libc.so.6"}},
		"/usr/bin/xz":               elftest.Opts{Type: elf.ET_EXEC, Interp: synthInterp, Needed: []string{"libc.so.6"}},
		"/usr/bin/unrelated":        "#!/bin/false\n",
		"/usr/share/app/a.dat":      "a",
		"/usr/share/app/tmpl.html":  "<html>",
		"/usr/share/app/doc/README": "not owned",
		"/usr/share/other/x.dat":    "other",
		"/etc/shadow":               "root:*:",
		"/etc/app.conf":             "conf",
		"/var/lib/app/private.key":  "secret",
		"/var/lib/dpkg/status": "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2.36\n\n" +
			"Package: app\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\nDepends: libc6, app-data\nSuggests: xz-utils\n\n" +
			"Package: app-data\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n\n" +
			"Package: xz-utils\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5\n\n" +
			"Package: other\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n",
		"/var/lib/dpkg/info/libc6:amd64.list": list("/lib/x86_64-linux-gnu/libc.so.6", synthInterp),
		"/var/lib/dpkg/info/app.list":         list("/usr/bin/app", "/usr/bin/helper", "/etc/app.conf", "/etc/shadow", "/var/lib/app/private.key"),
		"/var/lib/dpkg/info/app-data.list":    list("/usr/share/app", "/usr/share/app/a.dat", "/usr/share/app/tmpl.html"),
		"/var/lib/dpkg/info/xz-utils.list":    list("/usr/bin/xz"),
		"/var/lib/dpkg/info/other.list":       list("/usr/share/other/x.dat", "/usr/bin/unrelated"),
	}
}

func TestRuleLiterals(t *testing.T) {
	p, notes := planRoot(t, synthRootDir(t, literalRoot(t)), "/usr/bin/app", nil)
	for f, want := range map[string]bool{
		"/usr/share/app/a.dat":      true,  // a directory literal: the files its packages own
		"/usr/share/app/tmpl.html":  true,  // a stem: "/usr/share/app/tmpl" plus a suffix
		"/usr/share/app/doc/README": false, // in the directory, owned by no package
		"/etc/app.conf":             true,  // one of a ':' search list
		"/usr/bin/helper":           true,  // named bare, in the program's package
		"/usr/bin/xz":               true,  // named as the tail of "unxz", in a package app suggests
		"/usr/share/other/x.dat":    false, // a package app does not depend on
		"/usr/bin/unrelated":        false,
		"/etc/shadow":               false, // never, whoever owns it
		"/var/lib/app/private.key":  false,
	} {
		if got := p.Tree().Resolve(f) != nil; got != want {
			t.Errorf("%s in the image: %v, want %v", f, got, want)
		}
	}
	joined := strings.Join(notes, "\n")
	if !strings.Contains(joined, `literals: added /etc/app.conf: path literal "/etc/app.conf" in /usr/bin/app (package app)`) {
		t.Errorf("notes do not give the literal's reason:\n%s", joined)
	}
	if e := p.Tree().Resolve("/usr/bin/xz"); e == nil || !strings.Contains(strings.Join(e.Why(), " "), `names the program "xz"`) {
		t.Errorf("/usr/bin/xz's reason: %+v", e)
	}

	t.Run("over the budget", func(t *testing.T) {
		pl, err := NewPlanner(synthRootDir(t, literalRoot(t)), WithCPUs(elfdeps.BaselineCPU))
		if err != nil {
			t.Fatal(err)
		}
		if err := pl.AddProgram("/usr/bin/app"); err != nil {
			t.Fatal(err)
		}
		_, err = pl.ApplyRules(RuleOptions{LiteralBudget: 10})
		if err == nil || !strings.Contains(err.Error(), "more than the budget") || !strings.Contains(err.Error(), "/usr/bin/") {
			t.Errorf("over the budget: %v", err)
		}
	})
	t.Run("no dpkg database", func(t *testing.T) {
		files := literalRoot(t)
		delete(files, "/var/lib/dpkg/status")
		p, notes := planRoot(t, synthRootDir(t, files), "/usr/bin/app", nil)
		if p.Tree().Resolve("/etc/app.conf") != nil || !strings.Contains(strings.Join(notes, "\n"), "no dpkg database") {
			t.Errorf("without a database: notes %q", notes)
		}
	})
}
