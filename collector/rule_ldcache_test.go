package collector

import (
	"debug/elf"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/scratchpack/scratchpack/collector/rootfs"
	"github.com/scratchpack/scratchpack/elfdeps"
	"github.com/scratchpack/scratchpack/internal/elftest"
)

const (
	synthInterp = "/lib64/ld-linux-x86-64.so.2"
	synthMusl   = "/lib/ld-musl-x86_64.so.1"
	// synthSystemDirs is SYSTEM_DIRS as Debian x86-64's ld.so carries it.
	synthSystemDirs = "\x00/lib/x86_64-linux-gnu/\x00/usr/lib/x86_64-linux-gnu/\x00/lib/\x00/usr/lib/\x00"
)

// synthRootDir writes files (ELF objects from elftest.Opts, text from strings, links from "->target") into a
// new directory and opens it as a root. A glibc root gets its fake ld.so.
func synthRootDir(t *testing.T, files map[string]any) rootfs.FS {
	t.Helper()
	dir := t.TempDir()
	write := func(p string, v any) {
		dst := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch v := v.(type) {
		case elftest.Opts:
			err = os.WriteFile(dst, elftest.ELF(v), 0o755)
		case []byte:
			err = os.WriteFile(dst, v, 0o644)
		case string:
			if target, ok := strings.CutPrefix(v, "->"); ok {
				err = os.Symlink(target, dst)
			} else {
				err = os.WriteFile(dst, []byte(v), 0o644)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for p, v := range files {
		write(p, v)
	}
	root, err := rootfs.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

// glibcRoot is a synthetic Debian-like root: libc in the multiarch directory, libloc.so.1 in /usr/local/lib,
// both in the root's cache (made by elfdeps' ldconfig), and prog needing names.
func glibcRoot(t *testing.T, withCache bool, needed ...string) rootfs.FS {
	t.Helper()
	files := map[string]any{
		synthInterp:                           elftest.Opts{Soname: "ld-linux-x86-64.so.2", Extra: []byte(synthSystemDirs)},
		"/lib/x86_64-linux-gnu/libc.so.6":     elftest.Opts{Soname: "libc.so.6"},
		"/usr/local/lib/libloc.so.1.0":        elftest.Opts{Soname: "libloc.so.1", Needed: []string{"libc.so.6"}},
		"/usr/local/lib/libloc.so.1":          "->libloc.so.1.0",
		"/usr/local/lib/libunused.so.3":       elftest.Opts{Soname: "libunused.so.3"},
		"/etc/ld.so.conf":                     "include /etc/ld.so.conf.d/*.conf\n",
		"/etc/ld.so.conf.d/libc.conf":         "/usr/local/lib\n",
		"/etc/ld.so.conf.d/x86_64-linux.conf": "/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n",
		"/usr/bin/prog":                       elftest.Opts{Type: elf.ET_EXEC, Interp: synthInterp, Needed: needed},
	}
	if withCache {
		m := fstest.MapFS{}
		for p, v := range files {
			if o, ok := v.(elftest.Opts); ok {
				m[strings.TrimPrefix(p, "/")] = &fstest.MapFile{Data: elftest.ELF(o)}
			}
		}
		m["usr/local/lib/libloc.so.1"] = &fstest.MapFile{Data: []byte("libloc.so.1.0"), Mode: os.ModeSymlink}
		c, err := elfdeps.LDConfig{Dirs: []string{"/usr/local/lib", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"},
			Machine: elf.EM_X86_64, Generator: "ldconfig of the root"}.Build(m)
		if err != nil {
			t.Fatal(err)
		}
		files["/etc/ld.so.cache"] = c.Marshal(binary.LittleEndian)
	}
	return synthRootDir(t, files)
}

func planRoot(t *testing.T, root rootfs.FS, prog string, adds map[string]string) (*Planner, []string) {
	t.Helper()
	p, err := NewPlanner(root, WithCPUs(elfdeps.BaselineCPU))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AddProgram(prog); err != nil {
		t.Fatal(err)
	}
	addHostFiles(t, p, adds)
	if len(p.Problems) > 0 {
		t.Fatalf("the closure is incomplete: %v", p.Problems)
	}
	notes, err := p.ApplyRules(RuleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p, notes
}

func TestRuleLDCache(t *testing.T) {
	for _, withCache := range []bool{true, false} {
		name := map[bool]string{true: "root with a cache", false: "root with ld.so.conf only"}[withCache]
		t.Run(name, func(t *testing.T) {
			p, notes := planRoot(t, glibcRoot(t, withCache, "libloc.so.1", "libc.so.6"), "/usr/bin/prog", nil)
			conf, err := p.ReadEntry("/etc/ld.so.conf")
			if err != nil {
				t.Fatalf("no /etc/ld.so.conf: %v; notes %q", err, notes)
			}
			var dirs []string
			for _, l := range strings.Split(string(conf), "\n") {
				if l != "" && !strings.HasPrefix(l, "#") {
					dirs = append(dirs, l)
				}
			}
			// The root's configured directories the image holds, in the root's order.
			if diff := cmp.Diff([]string{"/usr/local/lib", "/lib/x86_64-linux-gnu"}, dirs); diff != "" {
				t.Errorf("/etc/ld.so.conf directories (-want +got):\n%s", diff)
			}
			data, err := p.ReadEntry("/etc/ld.so.cache")
			if err != nil {
				t.Fatal(err)
			}
			c, err := elfdeps.ParseLDCache(data)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range c.Entries {
				got = append(got, e.Key+" => "+e.Value)
			}
			// Only the image's libraries: libunused.so.3 stays out, as ldconfig -r IMAGE leaves it out.
			want := []string{"libloc.so.1 => /usr/local/lib/libloc.so.1", "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("the image's cache (-want +got):\n%s", diff)
			}
			wantGen := map[bool]string{true: "ldconfig of the root", false: ldcacheGenerator}[withCache]
			if c.Generator != wantGen {
				t.Errorf("generator %q, want %q", c.Generator, wantGen)
			}
			if e, _ := p.Entry("/etc/ld.so.cache"); e.Mode != 0o644 || e.UID != 0 {
				t.Errorf("/etc/ld.so.cache mode %v uid %d", e.Mode, e.UID)
			}
		})
	}

	t.Run("a closure in default directories gets no cache", func(t *testing.T) {
		p, notes := planRoot(t, glibcRoot(t, true, "libc.so.6"), "/usr/bin/prog", nil)
		for _, f := range []string{"/etc/ld.so.cache", "/etc/ld.so.conf"} {
			if _, ok := p.Entry(f); ok {
				t.Errorf("%s in the image; notes %q", f, notes)
			}
		}
	})

	t.Run("the user's own cache is kept", func(t *testing.T) {
		p, notes := planRoot(t, glibcRoot(t, true, "libloc.so.1"), "/usr/bin/prog", map[string]string{"/etc/ld.so.cache": "mine"})
		if data, _ := p.ReadEntry("/etc/ld.so.cache"); string(data) != "mine" {
			t.Errorf("the user's /etc/ld.so.cache was replaced")
		}
		if _, ok := p.Entry("/etc/ld.so.conf"); ok {
			t.Errorf("an /etc/ld.so.conf that does not match the user's cache was written")
		}
		if !strings.Contains(strings.Join(notes, "\n"), "kept the image's own /etc/ld.so.cache") {
			t.Errorf("notes do not say the cache was kept: %q", notes)
		}
	})

	t.Run("musl: the path file", func(t *testing.T) {
		root := synthRootDir(t, map[string]any{
			synthMusl:                  elftest.Opts{Soname: "libc.musl-x86_64.so.1"},
			"/etc/ld-musl-x86_64.path": "/opt/m\n/lib\n",
			"/opt/m/libm1.so.1":        elftest.Opts{Soname: "libm1.so.1"},
			"/usr/bin/prog":            elftest.Opts{Type: elf.ET_EXEC, Interp: synthMusl, Needed: []string{"libm1.so.1"}},
		})
		p, notes := planRoot(t, root, "/usr/bin/prog", nil)
		if data, err := p.ReadEntry("/etc/ld-musl-x86_64.path"); err != nil || string(data) != "/opt/m\n/lib\n" {
			t.Errorf("the path file: %q, %v; notes %q", data, err, notes)
		}
		if _, ok := p.Entry("/etc/ld.so.cache"); ok {
			t.Errorf("a glibc cache in a musl image")
		}
	})
}

// TestTreeFS checks the tree's file system with testing/fstest, links included.
func TestTreeFS(t *testing.T) {
	tr := NewTree()
	for _, e := range []Entry{
		{Path: "/etc/hosts", Kind: KindFile, Mode: 0o644, Data: []byte("127.0.0.1 localhost\n")},
		{Path: "/usr/lib/libz.so.1.3", Kind: KindFile, Mode: 0o755, Data: []byte("z")},
		{Path: "/usr/lib/libz.so.1", Kind: KindSymlink, Target: "libz.so.1.3"},
		{Path: "/lib", Kind: KindSymlink, Target: "usr/lib"},
		{Path: "/var/empty", Kind: KindDir, Mode: 0o755},
	} {
		if err := tr.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	fsys := tr.FS()
	if err := fstest.TestFS(fsys, "etc/hosts", "usr/lib/libz.so.1.3", "usr/lib/libz.so.1", "var/empty"); err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile(fsys, "lib/libz.so.1")
	if err != nil || string(data) != "z" {
		t.Errorf("reading through two links: %q, %v", data, err)
	}
}

// TestDlopenedSoname: a library added after the closure (here as a rule adds it) whose DT_NEEDED is the
// SONAME of another added library resolves to it; without that one the build has a problem.
func TestDlopenedSoname(t *testing.T) {
	files := map[string]any{
		synthInterp:                       elftest.Opts{Soname: "ld-linux-x86-64.so.2", Extra: []byte(synthSystemDirs)},
		"/lib/x86_64-linux-gnu/libc.so.6": elftest.Opts{Soname: "libc.so.6"},
		"/opt/jdk/lib/server/libjvm.so":   elftest.Opts{Soname: "libjvm.so", Needed: []string{"libc.so.6"}},
		"/opt/jdk/lib/libjava.so":         elftest.Opts{Soname: "libjava.so", Needed: []string{"libjvm.so", "libc.so.6"}},
		"/opt/jdk/bin/java":               elftest.Opts{Type: elf.ET_EXEC, Interp: synthInterp, Needed: []string{"libc.so.6"}},
	}
	for _, tc := range []struct {
		name   string
		add    []string
		wantOK bool
	}{
		{"libjava.so then libjvm.so", []string{"/opt/jdk/lib/libjava.so", "/opt/jdk/lib/server/libjvm.so"}, true},
		{"libjava.so alone", []string{"/opt/jdk/lib/libjava.so"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlanner(synthRootDir(t, files), WithCPUs(elfdeps.BaselineCPU))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.AddProgram("/opt/jdk/bin/java"); err != nil {
				t.Fatal(err)
			}
			for _, a := range tc.add {
				if err := p.AddRootPath(a, Origin{Kind: OriginTraced, Reason: "traced"}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := p.ApplyRules(RuleOptions{}); err != nil {
				t.Fatal(err)
			}
			if ok := len(p.Problems) == 0; ok != tc.wantOK {
				t.Errorf("problems %v, want none: %v", p.Problems, tc.wantOK)
			}
		})
	}
}
