package elfdeps

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// ldTree is a root to build: files (a host path to copy after "@", else literal content) and symbolic
// links ("->target"), at root-relative paths.
type ldTree map[string]string

func (tr ldTree) write(t *testing.T, root string) {
	t.Helper()
	for rel, src := range tr {
		dst := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasPrefix(src, "->"):
			err = os.Symlink(src[2:], dst)
		case strings.HasPrefix(src, "@"):
			var data []byte
			if data, err = os.ReadFile(src[1:]); err == nil {
				err = os.WriteFile(dst, data, 0o644)
			}
		case src == "/":
			err = os.MkdirAll(dst, 0o755)
		default:
			err = os.WriteFile(dst, []byte(src), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// realLDConfig writes tree under a new root whose /etc/ld.so.conf holds conf, runs `ldconfig -X -r ROOT -C
// /ld.so.cache` there and returns the root and the cache it wrote.
func realLDConfig(t *testing.T, tree ldTree, conf string) (string, []byte) {
	t.Helper()
	ldconfig := ldconfigPath(t)
	root := t.TempDir()
	tree.write(t, root)
	ldTree{"etc/ld.so.conf": conf}.write(t, root)
	run(t, ldconfig, "-X", "-r", root, "-C", "/ld.so.cache", "-f", "/etc/ld.so.conf")
	data, err := os.ReadFile(filepath.Join(root, "ld.so.cache"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "ld.so.cache")); err != nil { // not part of what Build scans
		t.Fatal(err)
	}
	return root, data
}

// hostSystemDirs are the host ldconfig's built-in directories: Debian's are its interpreter's system
// directories.
func hostSystemDirs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(hostELF(t).interp)
	if err != nil {
		t.Skip(err)
	}
	return systemDirsIn(data)
}

// gccLibrary compiles a shared library with extra linker flags, skipping the test without gcc.
func gccLibrary(t *testing.T, soname string, ldflags ...string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "lib.c")
	if err := os.WriteFile(src, []byte("int f(void) { return 1; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, soname)
	args := append([]string{"-shared", "-fPIC", "-Wl,-soname," + soname, "-o", out, src}, ldflags...)
	if b, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %q: %v\n%s", args, err, b)
	}
	return out
}

// TestLDConfigBuildMatchesLDConfig builds caches of roots with Build and Marshal and compares them, byte
// for byte, with what the host's ldconfig writes for the same roots.
func TestLDConfigBuildMatchesLDConfig(t *testing.T) {
	host := hostELF(t)
	if host.machine != elf.EM_X86_64 {
		t.Skipf("the scenarios use x86-64 ISA levels; host is %v", host.machine)
	}
	libz := hostLibrary(t, "libz.so.1")
	libc := hostLibrary(t, "libc.so.6")
	libm := hostLibrary(t, "libm.so.6")
	v3 := gccLibrary(t, "libv.so.1", "-Wl,-z,x86-64-v3")
	v2 := gccLibrary(t, "libv.so.1", "-Wl,-z,x86-64-v2")
	noSoname := synthELF(t, synthOpts{Needed: []string{"libc.so.6"}})
	i386 := synthELF(t, synthOpts{Class: elf.ELFCLASS32, Machine: elf.EM_386, Soname: "libi.so.1"})
	i386libc6 := synthELF(t, synthOpts{Class: elf.ELFCLASS32, Machine: elf.EM_386, Soname: "libj.so.1", Needed: []string{"libm.so.6"}})
	arm := synthELF(t, synthOpts{Machine: elf.EM_AARCH64, Soname: "libarm.so.1"})
	exe := synthELF(t, synthOpts{Type: elf.ET_EXEC, Soname: "libexe.so.1"})
	static := synthELF(t, synthOpts{Static: true})
	sys := hostSystemDirs(t)

	tests := []struct {
		name string
		tree ldTree
		conf string
		dirs []string
	}{
		{"empty", ldTree{"d/": "/"}, "/d\n", []string{"/d"}},
		{"links, dev links, scripts and non-libraries", ldTree{
			"d/libz.so.1.2.13":       "@" + libz,
			"d/libz.so.1":            "->libz.so.1.2.13",
			"d/libz.so":              "->libz.so.1",
			"d/libzz.so":             "->libz.so.1.2.13", // a link named like no prefix of the soname: a file
			"d/libc.so":              "/* GNU ld script */ GROUP ( /lib/libc.so.6 )",
			"d/libnotes.so.txt":      "not ELF",
			"d/libnosoname.so":       string(noSoname),
			"d/libexe.so.1":          string(exe),
			"d/libstatic.so.1":       string(static),
			"d/libdangling.so.1":     "->nowhere.so.1",
			"d/README":               "text",
			"d/libdir.so.1/":         "/",
			"d/ld-linux-x86-64.so.2": "@" + host.interp,
		}, "/d\n", []string{"/d"}},
		{"newest version of one soname, and a file wins over a link", ldTree{
			"d/libm.so.6.9":  "@" + libm,
			"d/libm.so.6.10": "@" + libm,
			"d/libm.so.6":    "->libm.so.6.9",
			"e/libm.so.6":    "->../d/libm.so.6.10",
		}, "/d\n/e\n", []string{"/d", "/e"}},
		{"same soname in several directories keeps their order", ldTree{
			"usr/local/lib/libz.so.1":            "@" + libz,
			"opt/vendor/lib/libz.so.1":           "@" + libz,
			"usr/lib/x86_64-linux-gnu/libz.so.1": "@" + libz,
			"usr/lib/x86_64-linux-gnu/libc.so.6": "@" + libc,
		}, "/opt/vendor/lib\n/usr/local/lib\n", append([]string{"/opt/vendor/lib", "/usr/local/lib"}, sys...)},
		{"merged /usr: one directory by two names", ldTree{
			"lib":                                "->usr/lib",
			"usr/lib/x86_64-linux-gnu/libz.so.1": "@" + libz,
			"usr/lib/x86_64-linux-gnu/libc.so.6": "@" + libc,
			"usr/local/lib/libm.so.6":            "@" + libm,
			"alias":                              "->/usr/local/lib/",
		}, "/usr/local/lib\n/alias\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n",
			append([]string{"/usr/local/lib", "/alias", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"}, sys...)},
		{"glibc-hwcaps with ISA levels, an unused subdirectory, tls", ldTree{
			"d/libv.so.1":                          "@" + v2,
			"d/glibc-hwcaps/x86-64-v3/libv.so.1":   "@" + v3,
			"d/glibc-hwcaps/x86-64-v2/libv.so.1.0": "@" + v2,
			"d/glibc-hwcaps/x86-64-v4/":            "/",
			"d/glibc-hwcaps/.hidden/libv.so.1":     "@" + v3,
			"d/glibc-hwcaps/file":                  "x",
			"d/glibc-hwcaps/linked":                "->../tls", // a second name for tls/: one directory
			"d/tls/libz.so.1":                      "@" + libz,
			"d/libz.so.1":                          "@" + libz,
		}, "/d\n", []string{"/d"}},
		{"legacy hwcap subdirectories: platforms, hwcaps, tls, nested, a configured hwcap path", ldTree{
			"d/libz.so.1":                  "@" + libz,
			"d/x86_64/libz.so.1":           "@" + libz,
			"d/haswell/libz.so.1":          "@" + libz,
			"d/haswell/x86_64/libz.so.1":   "@" + libz,
			"d/tls/haswell/libz.so.1":      "@" + libz,
			"d/xeon_phi/avx512_1/":         "/",
			"d/avx512_1/libz.so.1":         "@" + libz,
			"d/i686/sse2/libi.so.1":        string(i386),
			"d/i586/libi.so.1":             string(i386),
			"d/i686/libj.so.1":             string(i386libc6),
			"d/sse3/libz.so.1":             "@" + libz, // not a hwcap glibc knows: not descended into
			"d/x86_64/glibc-hwcaps/":       "/",
			"d/neon/libz.so.1":             "@" + libz, // an ARM name means nothing to an x86 ldconfig
			"e/haswell/libm.so.6":          "@" + libm,
			"e/haswell/x86_64/libm.so.6":   "->../libm.so.6",
			"e/libm.so.6":                  "@" + libm,
			"opt/x86_64/libz.so.1":         "@" + libz, // a configured directory named like a hwcap is one too
			"opt/x86_64/haswell/libm.so.6": "@" + libm,
		}, "/d\n/e\n/opt/x86_64\n", []string{"/d", "/e", "/opt/x86_64"}},
		{"other classes and machines", ldTree{
			"d/libi.so.1":   string(i386),
			"d/libj.so.1":   string(i386libc6),
			"d/libarm.so.1": string(arm),
		}, "/d\n", []string{"/d"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, want := realLDConfig(t, tc.tree, tc.conf)
			real, err := ParseLDCache(want)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(tc.name, "legacy") {
				var masks []uint64
				for _, e := range real.Entries {
					masks = append(masks, e.HWCap)
				}
				for _, m := range []uint64{1 << 1, 1 << 50, 1<<50 | 1<<1, 1<<63 | 1<<50, 1 << 2, 1<<49 | 1<<0, 1 << 48, 1 << 49} {
					if !slices.Contains(masks, m) {
						t.Errorf("ldconfig wrote no entry with hwcap %#x (the scenario is not what it says): %#x", m, masks)
					}
				}
			}
			c, err := LDConfig{Dirs: tc.dirs, Machine: host.machine, Generator: real.Generator}.Build(os.DirFS(root))
			if err != nil {
				t.Fatal(err)
			}
			got := c.Marshal(binary.LittleEndian)
			if !bytes.Equal(got, want) {
				parsed, perr := ParseLDCache(got)
				if perr != nil {
					t.Fatalf("Marshal wrote an unparsable cache: %v", perr)
				}
				t.Errorf("the cache differs from ldconfig's (%d bytes, want %d); ldconfig -p (-want +got):\n%s",
					len(got), len(want), diffLines(ldconfigP(t, real, "c"), ldconfigP(t, parsed, "c")))
			}
		})
	}
}

// TestLDCacheMarshalRoundTrip marshals parsed caches that ldconfig wrote back to their bytes.
func TestLDCacheMarshalRoundTrip(t *testing.T) {
	if data, err := os.ReadFile("/etc/ld.so.cache"); err == nil {
		c, err := ParseLDCache(data)
		if err != nil {
			t.Fatalf("the host's cache: %v", err)
		}
		if got := c.Marshal(binary.LittleEndian); !bytes.Equal(got, data) {
			t.Errorf("the host's /etc/ld.so.cache (%d entries) marshals to other bytes (%d, want %d)", len(c.Entries), len(got), len(data))
		}
	}
	tree := map[string]string{}
	libTree(t, tree, hostLibrary(t, "libz.so.1"), "d", "d/glibc-hwcaps/x86-64-v3", "d/glibc-hwcaps/x86-64-v2")
	libTree(t, tree, hostLibrary(t, "libc.so.6"), "d", "d/tls")
	data, err := os.ReadFile(ldconfigCache(t, tree, ""))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseLDCache(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Marshal(binary.LittleEndian); !bytes.Equal(got, data) {
		t.Errorf("a cache with glibc-hwcaps and tls entries marshals to other bytes")
	}
	be := c.Marshal(binary.BigEndian)
	cb, err := ParseLDCache(be)
	if err != nil {
		t.Fatalf("the big-endian cache does not parse: %v", err)
	}
	if d := diffLines(ldconfigP(t, c, "c"), ldconfigP(t, cb, "c")); d != "" {
		t.Errorf("the big-endian cache reads differently (-le +be):\n%s", d)
	}
}

// TestLDConfigBuildHostile: a root's links and files cannot make Build loop, escape the root or fail.
func TestLDConfigBuildHostile(t *testing.T) {
	fsys := fstest.MapFS{
		"d/libloop.so.1":   {Data: []byte("libloop.so.1"), Mode: os.ModeSymlink},
		"d/libup.so.1":     {Data: []byte("../../../../etc/libc.so.6"), Mode: os.ModeSymlink},
		"d/libtrunc.so.1":  {Data: synthELF(t, synthOpts{Soname: "libtrunc.so.1"})[:70]},
		"d/glibc-hwcaps/x": {Data: []byte("/d"), Mode: os.ModeSymlink},
		"d/tls":            {Data: []byte("."), Mode: os.ModeSymlink},
	}
	c, err := LDConfig{Dirs: []string{"/d", "/d/tls", "relative", "/missing"}, Machine: elf.EM_X86_64}.Build(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Entries) != 0 {
		t.Errorf("entries from a hostile root: %+v", c.Entries)
	}
	if _, err := (LDConfig{Machine: elf.EM_ALPHA}).Build(fsys); !errors.Is(err, ErrNotCacheable) {
		t.Errorf("Build for an unknown machine: %v, want ErrNotCacheable", err)
	}
}

// FuzzLDConfigBuild: whatever a library file holds, Build neither panics nor fails, and what it builds
// marshals to a cache that parses back the same.
func FuzzLDConfigBuild(f *testing.F) {
	f.Add(synthELF(f, synthOpts{Soname: "libx.so.1", Needed: []string{"libc.so.6"}}))
	f.Add(synthELF(f, synthOpts{Class: elf.ELFCLASS32, Machine: elf.EM_386, Soname: "libx.so.1"}))
	if v3, err := os.ReadFile("/lib/x86_64-linux-gnu/libz.so.1"); err == nil && len(v3) < 1<<20 {
		f.Add(v3)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{
			"d/libx.so.1":                        {Data: data},
			"d/glibc-hwcaps/x86-64-v3/libx.so.1": {Data: data},
		}
		c, err := LDConfig{Dirs: []string{"/d"}, Machine: elf.EM_X86_64, Generator: "g"}.Build(fsys)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseLDCache(c.Marshal(binary.LittleEndian))
		if err != nil {
			t.Fatalf("Build's cache does not parse: %v", err)
		}
		if len(again.Entries) != len(c.Entries) || len(c.Entries) > 2 {
			t.Fatalf("entries %+v, parsed back %+v", c.Entries, again.Entries)
		}
	})
}
