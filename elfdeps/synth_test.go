package elfdeps

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// synthOpts describes a synthetic ELF object: just enough of an ELF file for a dynamic loader to decide
// whether and where to load it (ELF header, program headers, PT_INTERP, PT_DYNAMIC, a dynamic string table).
// The zero value is a 64-bit little-endian x86-64 ET_DYN with an empty dynamic section.
type synthOpts struct {
	Class   elf.Class   // default ELFCLASS64
	Data    elf.Data    // default ELFDATA2LSB
	Machine elf.Machine // default EM_X86_64
	Type    elf.Type    // default ET_DYN
	EFlags  uint32      // e_flags

	Interp  string   // PT_INTERP, none if ""
	Static  bool     // no PT_DYNAMIC at all
	Needed  []string // DT_NEEDED, in order
	Soname  string   // DT_SONAME, none if ""
	RPath   string   // DT_RPATH, none if ""
	RunPath string   // DT_RUNPATH, none if ""
	Flags1  uint64   // DT_FLAGS_1, none if 0

	// Extra is appended to the file, outside every segment but the PT_LOAD covering everything (the fake
	// ld.so carries its system directories there).
	Extra []byte
	// Patch overwrites single bytes of the finished file (offset -> byte), for malformed headers.
	Patch map[int]byte
}

// synthELF writes a minimal but valid ELF object with program headers only (no section headers): PT_INTERP
// (if any) first as the gABI wants, one PT_LOAD covering the whole file, then PT_DYNAMIC.
func synthELF(t testing.TB, o synthOpts) []byte {
	t.Helper()
	if o.Class == elf.ELFCLASSNONE {
		o.Class = elf.ELFCLASS64
	}
	if o.Data == elf.ELFDATANONE {
		o.Data = elf.ELFDATA2LSB
	}
	if o.Machine == elf.EM_NONE {
		o.Machine = elf.EM_X86_64
	}
	if o.Type == elf.ET_NONE {
		o.Type = elf.ET_DYN
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if o.Data == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	is64 := o.Class == elf.ELFCLASS64
	ehsize, phentsize, word := 52, 32, 4
	if is64 {
		ehsize, phentsize, word = 64, 56, 8
	}
	base := uint64(0)
	if o.Type == elf.ET_EXEC {
		base = 0x400000
	}

	// Dynamic string table: offset 0 is the empty string.
	strtab := []byte{0}
	addStr := func(s string) uint64 {
		off := uint64(len(strtab))
		strtab = append(strtab, s...)
		strtab = append(strtab, 0)
		return off
	}
	type dyn struct {
		tag elf.DynTag
		val uint64
	}
	var dyns []dyn
	if !o.Static {
		for _, n := range o.Needed {
			dyns = append(dyns, dyn{elf.DT_NEEDED, addStr(n)})
		}
		if o.Soname != "" {
			dyns = append(dyns, dyn{elf.DT_SONAME, addStr(o.Soname)})
		}
		if o.RPath != "" {
			dyns = append(dyns, dyn{elf.DT_RPATH, addStr(o.RPath)})
		}
		if o.RunPath != "" {
			dyns = append(dyns, dyn{elf.DT_RUNPATH, addStr(o.RunPath)})
		}
		if o.Flags1 != 0 {
			dyns = append(dyns, dyn{elf.DT_FLAGS_1, o.Flags1})
		}
	}

	nph := 1 // PT_LOAD
	if o.Interp != "" {
		nph++
	}
	if !o.Static {
		nph++
	}
	align := func(n, a int) int { return (n + a - 1) &^ (a - 1) }
	phoff := ehsize
	interpOff := phoff + nph*phentsize
	interpLen := 0
	if o.Interp != "" {
		interpLen = len(o.Interp) + 1
	}
	strOff := interpOff + interpLen
	// A symbol table holding only the null symbol, and a SysV hash table over it (nbucket = nchain = 1):
	// loaders that look symbols up (musl even in ldd mode) need both.
	symOff := align(strOff+len(strtab), 8)
	symLen := 16
	if is64 {
		symLen = 24
	}
	hashOff := symOff + symLen
	dynOff := align(hashOff+16, 8)
	if !o.Static {
		dyns = append(dyns,
			dyn{elf.DT_HASH, base + uint64(hashOff)},
			dyn{elf.DT_SYMTAB, base + uint64(symOff)},
			dyn{elf.DT_SYMENT, uint64(symLen)},
			dyn{elf.DT_STRTAB, base + uint64(strOff)},
			dyn{elf.DT_STRSZ, uint64(len(strtab))},
			dyn{elf.DT_NULL, 0})
	}
	dynLen := len(dyns) * 2 * word
	extraOff := dynOff + dynLen
	size := extraOff + len(o.Extra)

	out := make([]byte, size)
	put := func(off, width int, v uint64) {
		switch width {
		case 2:
			bo.PutUint16(out[off:], uint16(v))
		case 4:
			bo.PutUint32(out[off:], uint32(v))
		case 8:
			bo.PutUint64(out[off:], v)
		}
	}
	// e_ident
	copy(out, elf.ELFMAG)
	out[elf.EI_CLASS] = byte(o.Class)
	out[elf.EI_DATA] = byte(o.Data)
	out[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	out[elf.EI_OSABI] = byte(elf.ELFOSABI_NONE)
	// The rest of the ELF header; fields after e_entry differ in width by class.
	put(16, 2, uint64(o.Type))
	put(18, 2, uint64(o.Machine))
	put(20, 4, uint64(elf.EV_CURRENT))
	off := 24
	put(off, word, base+uint64(extraOff)) // e_entry: anywhere inside the load segment
	off += word
	put(off, word, uint64(phoff)) // e_phoff
	off += word
	put(off, word, 0) // e_shoff
	off += word
	put(off, 4, uint64(o.EFlags))
	off += 4
	put(off, 2, uint64(ehsize))
	put(off+2, 2, uint64(phentsize))
	put(off+4, 2, uint64(nph))
	put(off+6, 2, 0) // e_shentsize
	put(off+8, 2, 0) // e_shnum
	put(off+10, 2, 0)

	ph := phoff
	writePhdr := func(typ elf.ProgType, flags elf.ProgFlag, offset, filesz, alignment int) {
		v := base + uint64(offset)
		if is64 {
			put(ph, 4, uint64(typ))
			put(ph+4, 4, uint64(flags))
			put(ph+8, 8, uint64(offset))
			put(ph+16, 8, v)
			put(ph+24, 8, v)
			put(ph+32, 8, uint64(filesz))
			put(ph+40, 8, uint64(filesz))
			put(ph+48, 8, uint64(alignment))
		} else {
			put(ph, 4, uint64(typ))
			put(ph+4, 4, uint64(offset))
			put(ph+8, 4, v)
			put(ph+12, 4, v)
			put(ph+16, 4, uint64(filesz))
			put(ph+20, 4, uint64(filesz))
			put(ph+24, 4, uint64(flags))
			put(ph+28, 4, uint64(alignment))
		}
		ph += phentsize
	}
	if o.Interp != "" {
		writePhdr(elf.PT_INTERP, elf.PF_R, interpOff, interpLen, 1)
	}
	writePhdr(elf.PT_LOAD, elf.PF_R|elf.PF_W, 0, size, 0x1000)
	if !o.Static {
		writePhdr(elf.PT_DYNAMIC, elf.PF_R|elf.PF_W, dynOff, dynLen, word)
	}

	copy(out[interpOff:], o.Interp)
	copy(out[strOff:], strtab)
	if !o.Static {
		put(hashOff, 4, 1)   // nbucket
		put(hashOff+4, 4, 1) // nchain
	}
	d := dynOff
	for _, e := range dyns {
		put(d, word, uint64(e.tag))
		put(d+word, word, e.val)
		d += 2 * word
	}
	copy(out[extraOff:], o.Extra)
	for off, b := range o.Patch {
		out[off] = b
	}
	return out
}

func TestSynthELFParse(t *testing.T) {
	tests := []struct {
		name string
		opts synthOpts
		want File
	}{
		{
			name: "executable",
			opts: synthOpts{Type: elf.ET_EXEC, Interp: "/lib64/ld-linux-x86-64.so.2", Needed: []string{"liba.so.1", "libc.so.6"},
				RPath: "$ORIGIN/../lib", Flags1: uint64(elf.DF_1_NODEFLIB)},
			want: File{Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Type: elf.ET_EXEC, Machine: elf.EM_X86_64,
				Interp: "/lib64/ld-linux-x86-64.so.2", Dynamic: true, Needed: []string{"liba.so.1", "libc.so.6"},
				RPath: "$ORIGIN/../lib", HasRPath: true, Flags1: uint64(elf.DF_1_NODEFLIB)},
		},
		{
			name: "library with runpath hides rpath",
			opts: synthOpts{Soname: "liba.so.1", RPath: "/r", RunPath: "/run"},
			want: File{Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Type: elf.ET_DYN, Machine: elf.EM_X86_64,
				Dynamic: true, Soname: "liba.so.1", RunPath: "/run", HasRunPath: true},
		},
		{
			name: "32-bit i386",
			opts: synthOpts{Class: elf.ELFCLASS32, Machine: elf.EM_386, Interp: "/lib/ld-linux.so.2", Needed: []string{"libc.so.6"}},
			want: File{Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Type: elf.ET_DYN, Machine: elf.EM_386,
				Interp: "/lib/ld-linux.so.2", Dynamic: true, Needed: []string{"libc.so.6"}},
		},
		{
			name: "big-endian s390x",
			opts: synthOpts{Data: elf.ELFDATA2MSB, Machine: elf.EM_S390, Needed: []string{"libc.so.6"}, Soname: "libz.so.1"},
			want: File{Class: elf.ELFCLASS64, Data: elf.ELFDATA2MSB, Type: elf.ET_DYN, Machine: elf.EM_S390,
				Dynamic: true, Needed: []string{"libc.so.6"}, Soname: "libz.so.1"},
		},
		{
			name: "static",
			opts: synthOpts{Type: elf.ET_EXEC, Static: true},
			want: File{Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Type: elf.ET_EXEC, Machine: elf.EM_X86_64},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := synthELF(t, tc.opts)
			got, err := ParseELF(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatalf("ParseELF: %v", err)
			}
			if got.osABITag != -1 || !bytes.Equal(got.hdr, b[:len(got.hdr)]) || len(got.hdr) < 52 {
				t.Errorf("osABITag=%d, raw header %d bytes: want -1 and the file's header", got.osABITag, len(got.hdr))
			}
			opt := cmpopts.IgnoreUnexported(File{})
			if diff := cmp.Diff(&tc.want, got, opt); diff != "" {
				t.Errorf("ParseELF (-want +got):\n%s", diff)
			}

			// debug/elf must agree too (it reads program headers when there are no sections).
			ef, err := elf.NewFile(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("debug/elf: %v", err)
			}
			if ef.Class != tc.want.Class || ef.Machine != tc.want.Machine || ef.Type != tc.want.Type || ef.ByteOrder == nil {
				t.Errorf("debug/elf header: %v %v %v", ef.Class, ef.Machine, ef.Type)
			}
		})
	}
}

// TestSynthELFReadelf checks the writer against binutils once: readelf must see the same program headers and
// dynamic entries, and must not complain.
func TestSynthELFReadelf(t *testing.T) {
	readelf, err := exec.LookPath("readelf")
	if err != nil {
		t.Skip("readelf (binutils) is not installed")
	}
	b := synthELF(t, synthOpts{Type: elf.ET_EXEC, Interp: "/lib64/ld-linux-x86-64.so.2",
		Needed: []string{"liba.so.1", "libc.so.6"}, Soname: "prog", RPath: "/opt/r", RunPath: "$ORIGIN/../lib",
		Flags1: uint64(elf.DF_1_NODEFLIB)})
	p := t.TempDir() + "/prog"
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(readelf, "-W", "-d", "-l", p).CombinedOutput()
	if err != nil {
		t.Fatalf("readelf: %v\n%s", err, out)
	}
	s := string(out)
	if strings.Contains(strings.ToLower(s), "warning") || strings.Contains(strings.ToLower(s), "error") {
		t.Errorf("readelf complains:\n%s", s)
	}
	var got []string
	for _, re := range []string{
		`(?m)^\s+(INTERP|LOAD|DYNAMIC)\s`,
		`\[Requesting program interpreter: ([^\]]+)\]`,
		`\((NEEDED|SONAME|RPATH|RUNPATH)\)\s+\S+( \S+)*: \[([^\]]*)\]`,
		`\(FLAGS_1\)\s+Flags: (.*)`,
	} {
		for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(s, -1) {
			got = append(got, strings.TrimSpace(m[0]))
		}
	}
	want := []string{
		"INTERP", "LOAD", "DYNAMIC",
		"[Requesting program interpreter: /lib64/ld-linux-x86-64.so.2]",
		"(NEEDED)             Shared library: [liba.so.1]",
		"(NEEDED)             Shared library: [libc.so.6]",
		"(SONAME)             Library soname: [prog]",
		"(RPATH)              Library rpath: [/opt/r]",
		"(RUNPATH)            Library runpath: [$ORIGIN/../lib]",
		"(FLAGS_1)            Flags: NODEFLIB",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("readelf -d -l (-want +got):\n%s\nfull output:\n%s", diff, s)
	}
}

// synthRoot describes a root file tree by absolute path: a synthOpts value is an ELF object written by
// synthELF, a synthLink a symbolic link (its target verbatim), a synthText or []byte a regular file, a
// synthDir an empty directory, and nil nothing (to remove an entry a helper would add).
type synthRoot map[string]any

type (
	synthLink string
	synthText string
	synthDir  struct{}
)

const (
	synthRTLDPath = "/lib64/ld-linux-x86-64.so.2"
	synthMuslPath = "/lib/ld-musl-x86_64.so.1"
	synthProg     = "/bin/prog"
)

// synthSystemDirs is glibc's SYSTEM_DIRS as Debian x86-64's ld.so carries it: the fake ld.so holds it so
// the resolver reads its default directories from the interpreter, as from a real one.
const synthSystemDirs = "\x00/lib/x86_64-linux-gnu/\x00/usr/lib/x86_64-linux-gnu/\x00/lib/\x00/usr/lib/\x00"

// synthRTLD is a fake glibc ld.so.
func synthRTLD() synthOpts {
	return synthOpts{Soname: "ld-linux-x86-64.so.2", Extra: []byte(synthSystemDirs)}
}

// synthExe is o as a glibc program (ET_EXEC, PT_INTERP /lib64/ld-linux-x86-64.so.2 unless set).
func synthExe(o synthOpts) synthOpts {
	o.Type = elf.ET_EXEC
	if o.Interp == "" {
		o.Interp = synthRTLDPath
	}
	return o
}

// synthMuslExe is o as a musl program.
func synthMuslExe(o synthOpts) synthOpts {
	o.Type = elf.ET_EXEC
	o.Interp = synthMuslPath
	return o
}

// synthCPU is a fixed processor, so that results never depend on the machine running the tests.
func synthCPU(elf.Machine, elf.Class) CPU {
	return CPU{HWCaps: []string{"x86-64-v3", "x86-64-v2"}, Platform: "haswell", LegacyHWCaps: []string{"x86_64"}}
}

func (sr synthRoot) content(t testing.TB, p string) (data []byte, mode fs.FileMode, ok bool) {
	t.Helper()
	switch v := sr[p].(type) {
	case nil:
		return nil, 0, false
	case synthOpts:
		return synthELF(t, v), 0o755, true
	case synthLink:
		return []byte(v), fs.ModeSymlink | 0o777, true
	case synthText:
		return []byte(v), 0o644, true
	case []byte:
		return v, 0o644, true
	case synthDir:
		return nil, fs.ModeDir | 0o755, true
	default:
		t.Fatalf("synthRoot[%q]: unknown entry type %T", p, v)
		return nil, 0, false
	}
}

// mapFS builds the tree as an fstest.MapFS.
func (sr synthRoot) mapFS(t testing.TB) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	for p := range sr {
		if !strings.HasPrefix(p, "/") {
			t.Fatalf("synthRoot path %q is not absolute", p)
		}
		if data, mode, ok := sr.content(t, p); ok {
			m[strings.TrimPrefix(p, "/")] = &fstest.MapFile{Data: data, Mode: mode}
		}
	}
	return m
}

// writeDir builds the tree under dir on disk.
func (sr synthRoot) writeDir(t testing.TB, dir string) {
	t.Helper()
	for _, p := range slices.Sorted(maps.Keys(sr)) {
		data, mode, ok := sr.content(t, p)
		if !ok {
			continue
		}
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case mode&fs.ModeSymlink != 0:
			err = os.Symlink(string(data), full)
		case mode.IsDir():
			err = os.MkdirAll(full, 0o755)
		default:
			err = os.WriteFile(full, data, mode.Perm())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
