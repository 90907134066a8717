package elfdeps

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// ---- helpers: the real tools --------------------------------------------------------------------------------

// ldconfigPath returns the host's ldconfig, skipping the test if there is none (non-glibc hosts).
func ldconfigPath(t testing.TB) string {
	t.Helper()
	p := findLDConfig()
	if p == "" {
		t.Skip("ldconfig is not installed (not a glibc host): nothing to compare with")
	}
	return p
}

func findLDConfig() string {
	if p, err := exec.LookPath("ldconfig"); err == nil {
		return p
	}
	for _, p := range []string{"/sbin/ldconfig", "/usr/sbin/ldconfig"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// run runs a command in the C locale and returns its stdout, failing the test on a non-zero exit.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANGUAGE=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("running %s %q: %v\nstderr: %s", name, args, err, stderr.String())
	}
	return stdout.String()
}

// diffLines reports the lines that differ as (-want +got), or "" if the texts are equal.
func diffLines(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	n := 0
	for i := 0; i < max(len(w), len(g)) && n < 20; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl || (i >= len(w)) != (i >= len(g)) {
			fmt.Fprintf(&b, "line %d:\n-%q\n+%q\n", i+1, wl, gl)
			n++
		}
	}
	if len(w) != len(g) {
		fmt.Fprintf(&b, "%d lines, want %d\n", len(g), len(w))
	}
	return b.String()
}

func ldconfigP(t *testing.T, c *LDCache, path string) string {
	t.Helper()
	var b bytes.Buffer
	if err := c.WriteLDConfigP(&b, path); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func parseFile(t *testing.T, path string) *LDCache {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseLDCache(data)
	if err != nil {
		t.Fatalf("ParseLDCache(%s): %v", path, err)
	}
	return c
}

// hostBinary describes /bin/true: the class, machine and e_flags its loader was built for, and that loader.
type hostBinary struct {
	path, interp string
	class        elf.Class
	machine      elf.Machine
	flags        uint32
}

func (h hostBinary) accept() func(int32) bool { return CacheFlagsAccepted(h.class, h.machine, h.flags) }

func hostELF(t testing.TB) hostBinary {
	t.Helper()
	p, err := exec.LookPath("true")
	if err != nil {
		p = "/bin/true"
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Skipf("no /bin/true to learn the host's class and machine: %v", err)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Skipf("%s is not ELF: %v", p, err)
	}
	defer f.Close()
	h := hostBinary{path: p, class: f.Class, machine: f.Machine}
	off := 36 // e_flags in Elf32_Ehdr
	if f.Class == elf.ELFCLASS64 {
		off = 48
	}
	h.flags = f.ByteOrder.Uint32(data[off:])
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b, err := io.ReadAll(prog.Open())
			if err != nil {
				t.Fatal(err)
			}
			h.interp = strings.TrimRight(string(b), "\x00")
		}
	}
	return h
}

// hostLibrary returns a library of the host's machine that `ldconfig -p` lists under soname.
func hostLibrary(t testing.TB, soname string) string {
	t.Helper()
	p, ok := findHostLibrary(t, soname)
	if !ok {
		t.Skipf("ldconfig -p lists no %s for this machine to build a test cache with", soname)
	}
	return p
}

func findHostLibrary(t testing.TB, soname string) (string, bool) {
	t.Helper()
	host := hostELF(t)
	for _, line := range strings.Split(run(t, ldconfigPath(t), "-p"), "\n") {
		key, rest, ok := strings.Cut(strings.TrimPrefix(line, "\t"), " (")
		_, path, ok2 := strings.Cut(rest, ") => ")
		if !ok || !ok2 || key != soname {
			continue
		}
		if f, err := elf.Open(path); err == nil {
			same := f.Class == host.class && f.Machine == host.machine
			f.Close()
			if same {
				return path, true
			}
		}
	}
	return "", false
}

// ldconfigCache builds a cache with `ldconfig -r ROOT -C /ld.so.cache -f /etc/ld.so.conf -X [-c format]` over a
// tree holding only /d: copies (src) and symlinks ("->target") at the given root-relative paths. -r keeps the
// host's directories out (and keeps the host's aux-cache untouched) and works without privileges.
func ldconfigCache(t testing.TB, tree map[string]string, format string) (cachePath string) {
	t.Helper()
	ldconfig := ldconfigPath(t)
	root := t.TempDir()
	for rel, src := range tree {
		dst := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(src, "->"); ok {
			if err := os.Symlink(target, dst); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/ld.so.conf"), []byte("/d\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-r", root, "-C", "/ld.so.cache", "-f", "/etc/ld.so.conf", "-X"}
	if format != "" {
		args = append(args, "-c", format)
	}
	run(t, ldconfig, args...)
	return filepath.Join(root, "ld.so.cache")
}

// libTree places a copy of lib and its SONAME symlink in each directory.
func libTree(t testing.TB, tree map[string]string, lib string, dirs ...string) (soname string) {
	t.Helper()
	f, err := elf.Open(lib)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names, err := f.DynString(elf.DT_SONAME)
	if err != nil || len(names) != 1 {
		t.Fatalf("%s: no SONAME (%v)", lib, err)
	}
	real, err := filepath.EvalSymlinks(lib)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Base(real)
	for _, d := range dirs {
		tree[filepath.Join(d, base)] = real
		if base != names[0] {
			tree[filepath.Join(d, names[0])] = "->" + base
		}
	}
	return names[0]
}

// ---- helpers: synthetic caches ------------------------------------------------------------------------------

type synthCache struct {
	entries   []CacheEntry
	hwcaps    []string // nil: no glibc-hwcaps section
	generator *string  // nil: no generator section
	order     binary.AppendByteOrder
	endian    *byte // header flags byte; nil: 2 or 3 from order
	old       bool  // prepend an old-format table (ldconfig -c compat)
	noExt     bool  // extension_offset 0
}

func ptr[T any](v T) *T { return &v }

// bytes lays the cache out as ldconfig does: [old table] header entries strings | extension dir, hwcaps, generator.
func (s synthCache) bytes() []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	if s.order != nil {
		bo = s.order
	}
	var out []byte
	if s.old {
		out = append(out, "ld.so-1.7.0\x00"...)
		out = bo.AppendUint32(out, uint32(len(s.entries)))
		for _, e := range s.entries {
			out = bo.AppendUint32(out, uint32(e.Flags))
			out = bo.AppendUint64(out, 0)
		}
		for len(out)%8 != 0 {
			out = append(out, 0)
		}
	}
	base := len(out)
	var strs []byte
	strOff := map[string]uint32{}
	strStart := 48 + 24*len(s.entries)
	intern := func(v string) uint32 {
		if o, ok := strOff[v]; ok {
			return o
		}
		o := uint32(strStart + len(strs))
		strs = append(append(strs, v...), 0)
		strOff[v] = o
		return o
	}
	var ents []byte
	for _, e := range s.entries {
		ents = bo.AppendUint32(ents, uint32(e.Flags))
		ents = bo.AppendUint32(ents, intern(e.Key))
		ents = bo.AppendUint32(ents, intern(e.Value))
		ents = bo.AppendUint32(ents, e.OSVersion)
		ents = bo.AppendUint64(ents, e.HWCap)
	}
	var hw []uint32
	for _, h := range s.hwcaps {
		hw = append(hw, uint32(base)+intern(h)) // the hwcaps offsets are read from the start of the file
	}
	for (strStart+len(strs))%4 != 0 {
		strs = append(strs, 0)
	}
	extOff := base + strStart + len(strs)
	endian := byte(2)
	if s.endian != nil {
		endian = *s.endian
	} else if s.order == binary.BigEndian {
		endian = 3
	}
	hdr := []byte("glibc-ld.so.cache1.1")
	hdr = bo.AppendUint32(hdr, uint32(len(s.entries)))
	hdr = bo.AppendUint32(hdr, uint32(len(strs)))
	hdr = append(hdr, endian, 0, 0, 0)
	if s.noExt {
		hdr = bo.AppendUint32(hdr, 0)
	} else {
		hdr = bo.AppendUint32(hdr, uint32(extOff))
	}
	hdr = append(hdr, make([]byte, 12)...)
	out = append(append(append(out, hdr...), ents...), strs...)
	if s.noExt {
		return out
	}
	var secs [][3]uint32 // tag, offset, size
	n := 0
	if s.generator != nil {
		n++
	}
	if s.hwcaps != nil {
		n++
	}
	dataOff := extOff + 8 + 16*n
	var payload []byte
	if s.hwcaps != nil {
		secs = append(secs, [3]uint32{1, uint32(dataOff), uint32(4 * len(hw))})
		for _, o := range hw {
			payload = bo.AppendUint32(payload, o)
		}
	}
	if s.generator != nil {
		secs = append(secs, [3]uint32{0, uint32(dataOff + len(payload)), uint32(len(*s.generator))})
		payload = append(payload, *s.generator...)
	}
	out = bo.AppendUint32(out, ldcacheExtMagic)
	out = bo.AppendUint32(out, uint32(len(secs)))
	for _, sec := range secs {
		out = bo.AppendUint32(out, sec[0])
		out = bo.AppendUint32(out, 0)
		out = bo.AppendUint32(out, sec[1])
		out = bo.AppendUint32(out, sec[2])
	}
	return append(out, payload...)
}

const hwcapExt = uint64(1) << 62

// ---- 1. the host's cache against `ldconfig -p` ---------------------------------------------------------------

func TestLDCacheSystemMatchesLDConfigP(t *testing.T) {
	ldconfig := ldconfigPath(t)
	if _, err := os.Stat("/etc/ld.so.cache"); err != nil {
		t.Skipf("ldconfig is installed but the host has no cache: %v", err)
	}
	c := parseFile(t, "/etc/ld.so.cache")
	if len(c.Entries) == 0 || c.Generator == "" {
		t.Errorf("parsed %d entries, generator %q: want a populated cache", len(c.Entries), c.Generator)
	}
	if d := diffLines(run(t, ldconfig, "-p"), ldconfigP(t, c, "/etc/ld.so.cache")); d != "" {
		t.Errorf("WriteLDConfigP differs from ldconfig -p (-want +got):\n%s", d)
	}
}

// ---- 2. caches built by ldconfig: hwcaps extension, legacy dirs, compat format --------------------------------

func TestLDCacheLDConfigBuilt(t *testing.T) {
	ldconfig := ldconfigPath(t)
	accept := hostELF(t).accept()
	libz := hostLibrary(t, "libz.so.1")
	libc := hostLibrary(t, "libc.so.6")

	tree := map[string]string{}
	zName := libTree(t, tree, libz, "d", "d/glibc-hwcaps/x86-64-v3", "d/glibc-hwcaps/x86-64-v2", "d/glibc-hwcaps/zz-unknown")
	cName := libTree(t, tree, libc, "d", "d/tls")
	path := ldconfigCache(t, tree, "")
	c := parseFile(t, path)

	if d := diffLines(run(t, ldconfig, "-C", path, "-p"), ldconfigP(t, c, path)); d != "" {
		t.Errorf("WriteLDConfigP differs from ldconfig -C %s -p (-want +got):\n%s", path, d)
	}
	if want := []string{"x86-64-v2", "x86-64-v3", "zz-unknown"}; !reflect.DeepEqual(c.HWCaps, want) {
		t.Errorf("HWCaps = %q, want %q (sorted by strcmp)", c.HWCaps, want)
	}
	subdirs := map[string]bool{}
	for _, e := range c.Entries {
		if s, ok := e.HWCapsSubdir(c); ok {
			subdirs[s] = true
			if e.Key != zName || !strings.HasPrefix(e.Value, "/d/glibc-hwcaps/"+s+"/") {
				t.Errorf("extension entry %+v for subdir %q", e, s)
			}
		}
	}
	if len(subdirs) != 3 {
		t.Errorf("extension entries for %v, want the 3 glibc-hwcaps subdirs", subdirs)
	}

	hw := func(subdir string) string {
		real, _ := filepath.EvalSymlinks(libz)
		return "/d/glibc-hwcaps/" + subdir + "/" + filepath.Base(real)
	}
	prio := func(names ...string) func(string) int {
		return func(s string) int {
			for i, n := range names {
				if n == s {
					return i + 1
				}
			}
			return 0
		}
	}
	tests := []struct {
		name     string
		soname   string
		accept   func(int32) bool
		priority func(string) int
		want     string
		wantOK   bool
	}{
		{"v4 v3 v2 usable: v3 wins", zName, accept, prio("x86-64-v4", "x86-64-v3", "x86-64-v2"), hw("x86-64-v3"), true},
		{"only v2 usable", zName, accept, prio("x86-64-v2"), hw("x86-64-v2"), true},
		{"priority order is the caller's", zName, accept, prio("x86-64-v2", "x86-64-v3"), hw("x86-64-v2"), true},
		{"no hwcaps usable: plain", zName, accept, prio(), "/d/" + zName, true},
		{"nil priority: plain", zName, accept, nil, "/d/" + zName, true},
		{"unknown subdir usable", zName, accept, prio("zz-unknown"), hw("zz-unknown"), true},
		{"legacy tls entry before plain", cName, accept, prio("x86-64-v3"), "/d/tls/" + cName, true},
		{"other machine's flags", zName, func(f int32) bool { return f == 0x7fff }, prio("x86-64-v3"), "", false},
		{"absent", "libnot-in-cache.so.1", accept, prio("x86-64-v3"), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := c.Lookup(tc.soname, tc.accept, tc.priority)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tc.soname, got, ok, tc.want, tc.wantOK)
			}
		})
	}

	t.Run("compat format", func(t *testing.T) {
		// glibc 2.36's ldconfig -c compat corrupts its heap and aborts with glibc-hwcaps subdirs, or with a
		// library both in a directory and in its tls/ (a legacy hwcap entry with the same name): avoid both.
		tree := map[string]string{}
		libTree(t, tree, libz, "d")
		libTree(t, tree, libc, "d/tls")
		path := ldconfigCache(t, tree, "compat")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte("ld.so-1.7.0")) {
			t.Fatalf("ldconfig -c compat wrote no old-format header")
		}
		c := parseFile(t, path)
		if d := diffLines(run(t, ldconfig, "-C", path, "-p"), ldconfigP(t, c, path)); d != "" {
			t.Errorf("WriteLDConfigP differs from ldconfig -C %s -p (-want +got):\n%s", path, d)
		}
		if got, ok := c.Lookup(zName, accept, nil); got != "/d/"+zName || !ok {
			t.Errorf("Lookup(%q) = %q, %v", zName, got, ok)
		}
	})

	t.Run("old format only is rejected", func(t *testing.T) {
		tree := map[string]string{}
		libTree(t, tree, libz, "d")
		data, err := os.ReadFile(ldconfigCache(t, tree, "old"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseLDCache(data); !errors.Is(err, ErrBadCache) {
			t.Errorf("ParseLDCache(old format) error = %v, want ErrBadCache", err)
		}
	})
}

// ---- printing of every flag kind, hwcap form and extension layout, against ldconfig -p -------------------------

func TestLDCacheWriteLDConfigPSynthetic(t *testing.T) {
	ldconfig := ldconfigPath(t)
	var all []CacheEntry
	for arch := int32(0); arch <= 0x1300; arch += 0x100 {
		for typ := int32(0); typ <= 4; typ++ {
			all = append(all, CacheEntry{Flags: arch | typ, Key: fmt.Sprintf("libf%04x.so.1", arch|typ), Value: "/x/a"})
		}
	}
	all = append(all,
		CacheEntry{Flags: -1, Key: "libneg.so", Value: "/neg"},
		CacheEntry{Flags: 0x7fff0303, Key: "libhigh.so", Value: "/high"},
		CacheEntry{Flags: 0x0303, Key: "libos.so", Value: "/os", OSVersion: 0x00030200},
		CacheEntry{Flags: 0x0303, Key: "libv3.so", Value: "/v3", HWCap: hwcapExt | 1},
		CacheEntry{Flags: 0x0303, Key: "libisa.so", Value: "/isa", HWCap: hwcapExt | 2<<32 | 1},
		CacheEntry{Flags: 0x0303, Key: "libbadidx.so", Value: "/bad", HWCap: hwcapExt | 7},
		CacheEntry{Flags: 0x0303, Key: "libnotext.so", Value: "/ne", HWCap: hwcapExt | 1<<63 | 1},
		CacheEntry{Flags: 0x0303, Key: "libtls.so", Value: "/tls", HWCap: 1 << 63},
		CacheEntry{Flags: 0x0303, Key: "libx86.so", Value: "/x86", HWCap: 2},
	)
	tests := []struct {
		name string
		s    synthCache
	}{
		{"all flags, hwcaps, generator", synthCache{entries: all, hwcaps: []string{"x86-64-v2", "x86-64-v3"}, generator: ptr("gen 1.0")}},
		{"empty generator", synthCache{entries: all[:3], generator: ptr("")}},
		{"no generator", synthCache{entries: all[:3], hwcaps: []string{"a"}}},
		{"no extension", synthCache{entries: all, noExt: true}},
		{"empty hwcaps section is ignored", synthCache{entries: all, hwcaps: []string{}, generator: ptr("g")}},
		{"endianness unset", synthCache{entries: all[:5], endian: ptr[byte](0), generator: ptr("g")}},
		{"endianness bits and unused bits", synthCache{entries: all[:5], endian: ptr[byte](0xfe), generator: ptr("g")}},
		{"no entries", synthCache{generator: ptr("g")}},
		{"old header", synthCache{entries: all[:7], old: true, generator: ptr("g")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.s.bytes()
			path := filepath.Join(t.TempDir(), "c")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := ParseLDCache(data)
			if err != nil {
				t.Fatal(err)
			}
			if d := diffLines(run(t, ldconfig, "-C", path, "-p"), ldconfigP(t, c, path)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// ---- 3. libcmp ---------------------------------------------------------------------------------------------

func TestLibcmp(t *testing.T) {
	sign := func(v int) int { return min(max(v, -1), 1) }
	tests := []struct {
		a, b string
		want int // sign
	}{
		{"", "", 0},
		{"libc.so.6", "libc.so.6", 0},
		{"", "a", -1},
		{"a", "", 1},
		{"libz.so.1", "libz.so", 1},
		{"libc.so.10", "libc.so.9", 1},
		{"libc.so.9", "libc.so.10", -1},
		{"x01", "x1", 0},                    // numbers, not digit strings
		{"lib1", "liba", 1},                 // a digit sorts above a non-digit
		{"liba", "lib1", -1},                // ... on either side
		{"libA.so", "liba.so", -1},          // other bytes as chars
		{"lib\xffx", "libax", -1},           // signed char (x86)
		{"v4294967297", "v1", 0},            // C int arithmetic wraps
		{"libssl.so.3", "libssl.so.1.1", 1}, // 3 > 1
		{"libfoo.so.1.2", "libfoo.so.1.10", -1},
		{"a\x00b", "a", 0}, // NUL ends a C string
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q_vs_%q", tc.a, tc.b), func(t *testing.T) {
			if got := sign(libcmp(tc.a, tc.b)); got != tc.want {
				t.Errorf("libcmp(%q, %q) sign = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			if got := sign(libcmp(tc.b, tc.a)); got != -tc.want {
				t.Errorf("libcmp(%q, %q) sign = %d, want %d", tc.b, tc.a, got, -tc.want)
			}
		})
	}
}

func TestLibcmpOrderOfSystemCache(t *testing.T) {
	ldconfigPath(t)
	c := parseFile(t, "/etc/ld.so.cache")
	for i := 1; i < len(c.Entries); i++ {
		if prev, next := c.Entries[i-1].Key, c.Entries[i].Key; libcmp(prev, next) < 0 {
			t.Errorf("entries %d, %d: libcmp(%q, %q) < 0, but ldconfig sorts descending", i-1, i, prev, next)
		}
	}
}

// ---- 4. Lookup on the host cache ---------------------------------------------------------------------------

func TestLDCacheLookupSystem(t *testing.T) {
	ldconfig := ldconfigPath(t)
	accept := hostELF(t).accept()
	c := parseFile(t, "/etc/ld.so.cache")
	printed := strings.Split(run(t, ldconfig, "-p"), "\n")
	// The expectation: the first libc.so.6 line of ldconfig -p without hwcap whose flags the host accepts.
	want := ""
	for i, e := range c.Entries {
		if e.Key == "libc.so.6" && e.HWCap == 0 && accept(e.Flags) {
			_, want, _ = strings.Cut(printed[i+1], ") => ")
			break
		}
	}
	if want == "" {
		t.Fatalf("ldconfig -p lists no libc.so.6 for this machine")
	}
	if got, ok := c.Lookup("libc.so.6", accept, nil); got != want || !ok {
		t.Errorf("Lookup(libc.so.6) = %q, %v; ldconfig -p says %q", got, ok, want)
	}
	if got, ok := c.Lookup("libdoes-not-exist.so.42", accept, nil); ok || got != "" {
		t.Errorf("Lookup(absent) = %q, %v; want not found", got, ok)
	}
	// The binary search agrees with a linear scan for every name (all host entries are plain).
	for _, e := range c.Entries {
		want, wantOK := "", false
		for _, f := range c.Entries {
			if f.Key == e.Key && f.HWCap == 0 && accept(f.Flags) {
				want, wantOK = f.Value, true
				break
			}
		}
		if got, ok := c.Lookup(e.Key, accept, nil); got != want || ok != wantOK {
			t.Errorf("Lookup(%q) = %q, %v; linear scan gives %q, %v", e.Key, got, ok, want, wantOK)
		}
	}
}

// ldsoCacheResults runs the host's ld.so in trace mode with every name preloaded and LD_DEBUG=libs, and returns
// what its cache lookup gave for each name it searched ("" when the cache had nothing).
// With a cachePath, ld.so runs in a private mount namespace (unshare -m) where that file is bind-mounted over
// /etc/ld.so.cache.
func ldsoCacheResults(t *testing.T, cachePath string, names []string) map[string]string {
	t.Helper()
	host := hostELF(t)
	if host.interp == "" {
		t.Skipf("%s has no PT_INTERP", host.path)
	}
	args := []string{"env", "LD_DEBUG=libs", "LD_PRELOAD=" + strings.Join(names, " "), host.interp, "--list", host.path}
	if cachePath != "" {
		// Only ld.so gets LD_DEBUG: the output of unshare, sh and mount would be mixed in otherwise.
		args = append([]string{"unshare", "-m", "sh", "-c", `mount --bind "$0" /etc/ld.so.cache && exec "$@"`, cachePath}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%q: %v\n%s", args, err, stderr.String())
	}
	got := map[string]string{}
	var name string
	inCache := false
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		_, msg, ok := strings.Cut(sc.Text(), ":\t")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(msg, "find library="):
			name, _, _ = strings.Cut(strings.TrimPrefix(msg, "find library="), " ")
			inCache = false
		case msg == " search cache=/etc/ld.so.cache":
			inCache = true
			if _, seen := got[name]; !seen {
				got[name] = ""
			}
		case inCache && strings.HasPrefix(msg, "  trying file="):
			if got[name] == "" {
				got[name] = strings.TrimPrefix(msg, "  trying file=")
			}
			inCache = false
		default:
			inCache = false
		}
	}
	return got
}

// ldsoHWCapsPriority reads the usable glibc-hwcaps subdirectories, best first, from `ld.so --help`.
func ldsoHWCapsPriority(t *testing.T) func(string) int {
	interp := hostELF(t).interp
	var usable []string
	in := false
	for _, line := range strings.Split(run(t, interp, "--help"), "\n") {
		switch {
		case strings.HasPrefix(line, "Subdirectories of glibc-hwcaps directories"):
			in = true
		case in && strings.TrimSpace(line) == "":
			in = false
		case in && strings.HasSuffix(line, "(supported, searched)"):
			usable = append(usable, strings.Fields(line)[0])
		}
	}
	return func(s string) int {
		for i, u := range usable {
			if u == s {
				return i + 1
			}
		}
		return 0
	}
}

// TestLDCacheLookupMatchesLdSo asks the real loader: every name ld.so looks up in the host cache must give
// what Lookup gives.
func TestLDCacheLookupMatchesLdSo(t *testing.T) {
	ldconfigPath(t)
	host := hostELF(t)
	c := parseFile(t, "/etc/ld.so.cache")
	var names []string
	seen := map[string]bool{}
	for _, e := range c.Entries {
		if !seen[e.Key] {
			seen[e.Key] = true
			names = append(names, e.Key)
		}
	}
	names = append(names, "libdoes-not-exist.so.42")
	got := ldsoCacheResults(t, "", names)
	if len(got) < len(names)/2 {
		t.Fatalf("ld.so searched the cache for only %d of %d names", len(got), len(names))
	}
	accept := host.accept()
	prio := ldsoHWCapsPriority(t)
	for name, want := range got {
		if path, _ := c.Lookup(name, accept, prio); path != want {
			t.Errorf("Lookup(%q) = %q, ld.so's cache lookup gave %q", name, path, want)
		}
	}
}

// TestLDCacheLookupMatchesLdSoHWCaps binds an ldconfig-built cache with glibc-hwcaps and tls entries over
// /etc/ld.so.cache in a private mount namespace and asks ld.so. It needs root (mount) and unshare.
func TestLDCacheLookupMatchesLdSoHWCaps(t *testing.T) {
	ldconfigPath(t)
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare(1) is not installed: cannot give ld.so a test cache")
	}
	if os.Geteuid() != 0 || exec.Command(unshare, "-m", "true").Run() != nil {
		t.Skip("needs root to bind-mount a test cache over /etc/ld.so.cache in a private mount namespace")
	}
	host := hostELF(t)
	tree := map[string]string{}
	zName := libTree(t, tree, hostLibrary(t, "libz.so.1"), "d", "d/glibc-hwcaps/x86-64-v2", "d/glibc-hwcaps/x86-64-v3",
		"d/glibc-hwcaps/x86-64-v4", "d/glibc-hwcaps/zz-unknown")
	cName := libTree(t, tree, hostLibrary(t, "libc.so.6"), "d", "d/tls")
	path := ldconfigCache(t, tree, "")
	c := parseFile(t, path)
	names := []string{zName, cName, "libdoes-not-exist.so.42"}
	got := ldsoCacheResults(t, path, names)
	accept := host.accept()
	prio := ldsoHWCapsPriority(t)
	for _, name := range names {
		want, ok := got[name]
		if !ok {
			t.Errorf("ld.so did not search the cache for %s", name)
			continue
		}
		if path, _ := c.Lookup(name, accept, prio); path != want {
			t.Errorf("Lookup(%q) = %q, ld.so's cache lookup gave %q", name, path, want)
		}
	}
	if !strings.Contains(got[zName], "/glibc-hwcaps/") && prio("x86-64-v2") > 0 {
		t.Errorf("ld.so did not pick a glibc-hwcaps entry for %s: %q", zName, got[zName])
	}
}

// ---- Lookup rules on synthetic caches ----------------------------------------------------------------------

func TestLDCacheLookupRules(t *testing.T) {
	x8664 := CacheFlagsAccepted(elf.ELFCLASS64, elf.EM_X86_64, 0)
	prio := func(names ...string) func(string) int {
		return func(s string) int {
			for i, n := range names {
				if n == s {
					return i + 1
				}
			}
			return 0
		}
	}
	e := func(flags int32, value string, hwcap uint64) CacheEntry {
		return CacheEntry{Flags: flags, Key: "libfoo.so.1", Value: value, HWCap: hwcap}
	}
	hwcaps := []string{"x86-64-v2", "x86-64-v3", "x86-64-v4"}
	tests := []struct {
		name    string
		entries []CacheEntry
		prio    func(string) int
		want    string
	}{
		{"best priority wins", []CacheEntry{e(0x303, "v2", hwcapExt), e(0x303, "v3", hwcapExt|1), e(0x303, "plain", 0)},
			prio("x86-64-v3", "x86-64-v2"), "v3"},
		{"first on a tie", []CacheEntry{e(0x303, "a", hwcapExt|1), e(0x303, "b", hwcapExt|1), e(0x303, "plain", 0)},
			prio("x86-64-v3"), "a"},
		{"unusable hwcaps: plain", []CacheEntry{e(0x303, "v4", hwcapExt|2), e(0x303, "plain", 0)}, prio("x86-64-v3"), "plain"},
		{"index outside HWCaps is never used", []CacheEntry{e(0x303, "bad", hwcapExt|9), e(0x303, "plain", 0)}, prio("x86-64-v3"), "plain"},
		{"ISA level above the CPU", []CacheEntry{e(0x303, "v2dir-needs-v3", hwcapExt|2<<32), e(0x303, "plain", 0)},
			prio("x86-64-v2"), "plain"},
		{"ISA level the CPU runs", []CacheEntry{e(0x303, "v2dir-needs-v3", hwcapExt|2<<32), e(0x303, "plain", 0)},
			prio("x86-64-v3", "x86-64-v2"), "v2dir-needs-v3"},
		{"unknown ISA level", []CacheEntry{e(0x303, "lvl9", hwcapExt|9<<32|1), e(0x303, "plain", 0)}, prio("x86-64-v3"), "plain"},
		{"tls legacy entry is accepted", []CacheEntry{e(0x303, "tls", 1<<63), e(0x303, "plain", 0)}, nil, "tls"},
		{"platform/hwcap legacy entries are skipped", []CacheEntry{e(0x303, "x86_64", 2), e(0x303, "haswell", 1<<48), e(0x303, "tls+x86_64", 1<<63|2), e(0x303, "plain", 0)}, nil, "plain"},
		{"bits 62 and 63: not an extension, skipped", []CacheEntry{e(0x303, "odd", 3<<62), e(0x303, "plain", 0)}, prio("x86-64-v2"), "plain"},
		{"flags filter", []CacheEntry{e(0x803, "x32", 0), e(0x003, "i386", 0), e(0x303, "x86-64", 0)}, nil, "x86-64"},
		{"first acceptable plain entry", []CacheEntry{e(0x303, "first", 0), e(0x303, "second", 0)}, nil, "first"},
		{"plain before extension (unsorted): plain", []CacheEntry{e(0x303, "plain", 0), e(0x303, "v3", hwcapExt|1)}, prio("x86-64-v3"), "plain"},
		{"nothing acceptable", []CacheEntry{e(0x803, "x32", 0)}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &LDCache{HWCaps: hwcaps}
			c.Entries = append(c.Entries, CacheEntry{Flags: 0x303, Key: "libzzz.so", Value: "/zzz"})
			c.Entries = append(c.Entries, tc.entries...)
			c.Entries = append(c.Entries, CacheEntry{Flags: 0x303, Key: "liba.so", Value: "/a"})
			// Round-trip through the binary format so the parser sees the same layout.
			parsed, err := ParseLDCache(synthCache{entries: c.Entries, hwcaps: hwcaps}.bytes())
			if err != nil {
				t.Fatal(err)
			}
			for _, cc := range []*LDCache{c, parsed} {
				got, ok := cc.Lookup("libfoo.so.1", x8664, tc.prio)
				if got != tc.want || ok != (tc.want != "") {
					t.Errorf("Lookup = %q, %v; want %q", got, ok, tc.want)
				}
			}
		})
	}

	t.Run("binary search over many names", func(t *testing.T) {
		var c LDCache
		for i := 300; i >= 0; i-- { // descending, as libcmp sorts them
			for _, flags := range []int32{0x803, 0x303} {
				c.Entries = append(c.Entries, CacheEntry{Flags: flags, Key: fmt.Sprintf("lib%d.so.%d", i, i%7), Value: fmt.Sprintf("/%d/%x", i, flags)})
			}
		}
		for i := 1; i < len(c.Entries); i++ {
			if libcmp(c.Entries[i-1].Key, c.Entries[i].Key) < 0 {
				t.Fatalf("test table not sorted at %d", i)
			}
		}
		for i := 0; i <= 300; i++ {
			name := fmt.Sprintf("lib%d.so.%d", i, i%7)
			if got, ok := c.Lookup(name, x8664, nil); !ok || got != fmt.Sprintf("/%d/303", i) {
				t.Errorf("Lookup(%q) = %q, %v", name, got, ok)
			}
			if got, ok := c.Lookup(name+"x", x8664, nil); ok {
				t.Errorf("Lookup(%q) = %q, want not found", name+"x", got)
			}
		}
		if _, ok := (&LDCache{}).Lookup("libc.so.6", nil, nil); ok {
			t.Errorf("Lookup in an empty cache found something")
		}
	})
}

func TestCacheFlagsAccepted(t *testing.T) {
	tests := []struct {
		name    string
		class   elf.Class
		machine elf.Machine
		eflags  uint32
		yes, no []int32
	}{
		{"x86-64", elf.ELFCLASS64, elf.EM_X86_64, 0, []int32{0x0303}, []int32{0x0003, 0x0001, 0x0803, 0x0301, 0x0a03}},
		{"x32", elf.ELFCLASS32, elf.EM_X86_64, 0, []int32{0x0803}, []int32{0x0303, 0x0003}},
		{"i386", elf.ELFCLASS32, elf.EM_386, 0, []int32{0x0001, 0x0003}, []int32{0x0303, 0x0002, 0x0803}},
		{"aarch64", elf.ELFCLASS64, elf.EM_AARCH64, 0, []int32{0x0a03}, []int32{0x0003, 0x0303}},
		{"armhf", elf.ELFCLASS32, elf.EM_ARM, 0x05000400, []int32{0x0903, 0x0003}, []int32{0x0b03, 0x0001}},
		{"armel", elf.ELFCLASS32, elf.EM_ARM, 0x05000200, []int32{0x0b03, 0x0003}, []int32{0x0903}},
		{"ppc64le", elf.ELFCLASS64, elf.EM_PPC64, 2, []int32{0x0503}, []int32{0x0003}},
		{"ppc", elf.ELFCLASS32, elf.EM_PPC, 0, []int32{0x0001, 0x0003}, []int32{0x0503}},
		{"s390x", elf.ELFCLASS64, elf.EM_S390, 0, []int32{0x0403}, []int32{0x0003}},
		{"s390", elf.ELFCLASS32, elf.EM_S390, 0, []int32{0x0003}, []int32{0x0403}},
		{"riscv64 lp64d", elf.ELFCLASS64, elf.EM_RISCV, 0x5, []int32{0x1003}, []int32{0x0f03, 0x0003}},
		{"riscv64 lp64", elf.ELFCLASS64, elf.EM_RISCV, 0x1, []int32{0x0f03}, []int32{0x1003}},
		{"riscv single float", elf.ELFCLASS64, elf.EM_RISCV, 0x2, nil, []int32{0x0f03, 0x1003, 0x0003}},
		{"loongarch64 lp64d", elf.ELFCLASS64, elf.EM_LOONGARCH, 0x43, []int32{0x1203}, []int32{0x1103}},
		{"loongarch64 lp64s", elf.ELFCLASS64, elf.EM_LOONGARCH, 0x41, []int32{0x1103}, []int32{0x1203}},
		{"mips64 n64", elf.ELFCLASS64, elf.EM_MIPS, 0, []int32{0x0703}, []int32{0x0e03, 0x0603}},
		{"mips64 n64 nan2008", elf.ELFCLASS64, elf.EM_MIPS, 0x400, []int32{0x0e03}, []int32{0x0703}},
		{"mips n32", elf.ELFCLASS32, elf.EM_MIPS, 0x20, []int32{0x0603}, []int32{0x0003}},
		{"mips o32", elf.ELFCLASS32, elf.EM_MIPS, 0, []int32{0x0001, 0x0003}, []int32{0x0c03}},
		{"mips o32 nan2008", elf.ELFCLASS32, elf.EM_MIPS, 0x400, []int32{0x0c03}, []int32{0x0003}},
		{"sparc64", elf.ELFCLASS64, elf.EM_SPARCV9, 0, []int32{0x0103}, []int32{0x0003}},
		{"unknown machine", elf.ELFCLASS64, elf.EM_ALPHA, 0, []int32{0x0001, 0x0003, 0x4203, 0xff01}, []int32{0x0002, 0x0000, 0x10003, -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			accept := CacheFlagsAccepted(tc.class, tc.machine, tc.eflags)
			for _, f := range tc.yes {
				if !accept(f) {
					t.Errorf("flags %#x rejected, want accepted", f)
				}
			}
			for _, f := range tc.no {
				if accept(f) {
					t.Errorf("flags %#x accepted, want rejected", f)
				}
			}
		})
	}
}

// ---- 5. hostile input --------------------------------------------------------------------------------------

// smallLDConfigCache is a tiny cache built by ldconfig with a glibc-hwcaps and a tls entry.
func smallLDConfigCache(t *testing.T) []byte {
	t.Helper()
	data, ok := trySmallLDConfigCache(t)
	if !ok {
		t.Skip("ldconfig -p lists no libz.so.1 for this machine to build a test cache with")
	}
	return data
}

func trySmallLDConfigCache(t testing.TB) ([]byte, bool) {
	t.Helper()
	lib, ok := findHostLibrary(t, "libz.so.1")
	if !ok {
		return nil, false
	}
	tree := map[string]string{}
	libTree(t, tree, lib, "d", "d/glibc-hwcaps/x86-64-v3", "d/tls")
	data, err := os.ReadFile(ldconfigCache(t, tree, ""))
	if err != nil {
		t.Fatal(err)
	}
	return data, true
}

// checkParse parses with both byte orders without the recover safety net, so that a panic fails the test.
func checkParse(t testing.TB, data []byte) (*LDCache, error) {
	t.Helper()
	var first *LDCache
	var firstErr error
	for i, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		c, err := parseLDCache(data, bo)
		if err != nil && !errors.Is(err, ErrBadCache) {
			t.Fatalf("error %v does not wrap ErrBadCache", err)
		}
		if err == nil {
			if err := c.WriteLDConfigP(io.Discard, "x"); err != nil {
				t.Fatal(err)
			}
			for _, e := range c.Entries {
				e.HWCapsSubdir(c)
				c.Lookup(e.Key, nil, func(string) int { return 1 })
			}
		}
		if i == 0 {
			first, firstErr = c, err
		}
	}
	return first, firstErr
}

func TestParseLDCacheTruncated(t *testing.T) {
	ldconfigPath(t)
	data := smallLDConfigCache(t)
	if _, err := checkParse(t, data); err != nil {
		t.Fatalf("the whole cache: %v", err)
	}
	for n := 0; n < len(data); n++ {
		checkParse(t, data[:n])
		if _, err := ParseLDCache(data[:n]); !errors.Is(err, ErrBadCache) {
			t.Errorf("prefix of %d/%d bytes: error %v, want ErrBadCache", n, len(data), err)
		}
	}
}

func TestParseLDCacheCorrupted(t *testing.T) {
	ldconfigPath(t)
	data := smallLDConfigCache(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		b := bytes.Clone(data)
		for k := rng.IntN(4); k >= 0; k-- {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		checkParse(t, b)
		if _, err := ParseLDCache(b); err != nil && !errors.Is(err, ErrBadCache) {
			t.Fatalf("error %v does not wrap ErrBadCache", err)
		}
	}
}

func TestParseLDCacheMalformed(t *testing.T) {
	good := synthCache{
		entries:   []CacheEntry{{Flags: 0x303, Key: "libz.so.1", Value: "/v3/libz.so.1", HWCap: hwcapExt}, {Flags: 0x303, Key: "libz.so.1", Value: "/libz.so.1"}},
		hwcaps:    []string{"x86-64-v3"},
		generator: ptr("gen"),
	}
	le := binary.LittleEndian
	extOff := func(b []byte) int { return int(le.Uint32(b[32:36])) }
	tests := []struct {
		name   string
		mutate func([]byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"bad magic", func(b []byte) []byte { b[0] = 'G'; return b }},
		{"bad version", func(b []byte) []byte { b[19] = '2'; return b }},
		{"endianness invalid", func(b []byte) []byte { b[28] = 1; return b }},
		{"nlibs too big", func(b []byte) []byte { le.PutUint32(b[20:], 1<<30); return b }},
		{"nlibs max", func(b []byte) []byte { le.PutUint32(b[20:], ^uint32(0)); return b }},
		{"key beyond file", func(b []byte) []byte { le.PutUint32(b[48+4:], uint32(len(b))); return b }},
		{"key max", func(b []byte) []byte { le.PutUint32(b[48+4:], ^uint32(0)); return b }},
		{"value without NUL", func(b []byte) []byte {
			le.PutUint32(b[48+8:], uint32(len(b)-1))
			return append(b[:len(b)-1], 'x') // the generator's last byte, no NUL after it
		}},
		{"misaligned extension", func(b []byte) []byte { le.PutUint32(b[32:], uint32(extOff(b)+1)); return b }},
		{"extension beyond file", func(b []byte) []byte { le.PutUint32(b[32:], uint32(len(b))); return b }},
		{"extension offset max", func(b []byte) []byte { le.PutUint32(b[32:], ^uint32(3)); return b }},
		{"extension magic", func(b []byte) []byte { b[extOff(b)] ^= 1; return b }},
		{"extension count", func(b []byte) []byte { le.PutUint32(b[extOff(b)+4:], ^uint32(0)); return b }},
		{"section beyond file", func(b []byte) []byte { le.PutUint32(b[extOff(b)+8+12:], ^uint32(0)); return b }},
		{"hwcaps name beyond file", func(b []byte) []byte {
			o := int(le.Uint32(b[extOff(b)+8+8:]))
			le.PutUint32(b[o:], uint32(len(b)+5))
			return b
		}},
		{"old format only", func([]byte) []byte {
			b := []byte("ld.so-1.7.0\x00\x01\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00libz\x00")
			return b
		}},
		{"old format table too long", func([]byte) []byte {
			return []byte("ld.so-1.7.0\x00\xff\xff\xff\x00")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(good.bytes())
			checkParse(t, b)
			if c, err := ParseLDCache(b); !errors.Is(err, ErrBadCache) {
				t.Errorf("ParseLDCache = %+v, %v; want ErrBadCache", c, err)
			}
		})
	}

	t.Run("tolerated", func(t *testing.T) {
		// glibc ignores a misaligned or empty hwcaps section, unknown tags and unset endianness.
		b := good.bytes()
		o := extOff(b)
		le.PutUint32(b[o+8:], 7) // unknown tag instead of hwcaps
		c, err := ParseLDCache(b)
		if err != nil || c.HWCaps != nil || c.Generator != "gen" {
			t.Errorf("unknown tag: %+v, %v", c, err)
		}
		if s, ok := c.Entries[0].HWCapsSubdir(c); ok {
			t.Errorf("HWCapsSubdir without section = %q", s)
		}
		b = good.bytes()
		le.PutUint32(b[o+8+8:], le.Uint32(b[o+8+8:])+2) // misaligned hwcaps section
		if c, err := ParseLDCache(b); err != nil || c.HWCaps != nil {
			t.Errorf("misaligned hwcaps: %+v, %v", c, err)
		}
		b = good.bytes()
		b[28] = 0
		if _, err := ParseLDCache(b); err != nil {
			t.Errorf("unset endianness: %v", err)
		}
	})

	t.Run("big endian", func(t *testing.T) {
		for _, old := range []bool{false, true} {
			s := good
			s.old = old
			want, err := ParseLDCache(s.bytes())
			if err != nil {
				t.Fatal(err)
			}
			s.order = binary.BigEndian
			got, err := ParseLDCache(s.bytes())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("big-endian parse = %+v, want %+v", got, want)
			}
		}
	})
}

func FuzzParseLDCache(f *testing.F) {
	f.Add(synthCache{
		entries:   []CacheEntry{{Flags: 0x303, Key: "libz.so.1", Value: "/v3/libz.so.1", HWCap: hwcapExt}, {Flags: 0x303, Key: "libz.so.1", Value: "/libz.so.1"}},
		hwcaps:    []string{"x86-64-v3"},
		generator: ptr("gen"),
	}.bytes())
	f.Add(synthCache{entries: []CacheEntry{{Flags: 3, Key: "a", Value: "b"}}, old: true, order: binary.BigEndian}.bytes())
	// A small cache built by ldconfig -C, when the host has ldconfig and a libz.so.1 to put in it.
	if findLDConfig() != "" {
		if data, ok := trySmallLDConfigCache(f); ok {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, data)
		c, err := ParseLDCache(data)
		if err != nil {
			if !errors.Is(err, ErrBadCache) {
				t.Fatalf("error %v does not wrap ErrBadCache", err)
			}
			return
		}
		// What parses writes out as a cache that reads back the same.
		again, err := ParseLDCache(c.Marshal(binary.LittleEndian))
		if err != nil {
			t.Fatalf("Marshal wrote a cache that does not parse: %v", err)
		}
		if !reflect.DeepEqual(again.Entries, c.Entries) || !reflect.DeepEqual(again.HWCaps, c.HWCaps) || again.Generator != c.Generator {
			t.Fatalf("Marshal changed the cache:\n%+v\n%+v", c, again)
		}
	})
}
