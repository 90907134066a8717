package elfdeps

import (
	"bytes"
	"debug/elf"
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

	"github.com/scratchpack/scratchpack/internal/elftest"
)

// synthOpts and synthELF are internal/elftest's, shared with the other packages' tests.
type synthOpts = elftest.Opts

func synthELF(t testing.TB, o synthOpts) []byte {
	t.Helper()
	return elftest.ELF(o)
}

func TestSynthELFParse(t *testing.T) {
	tests := []struct {
		name string
		opts synthOpts
		want *File
	}{
		{
			name: "executable",
			opts: synthOpts{Type: elf.ET_EXEC, Interp: "/lib64/ld-linux-x86-64.so.2", Needed: []string{"liba.so.1", "libc.so.6"},
				RPath: "$ORIGIN/../lib", Flags1: uint64(elf.DF_1_NODEFLIB)},
			want: &File{Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Type: elf.ET_EXEC, Machine: elf.EM_X86_64,
				Interp: "/lib64/ld-linux-x86-64.so.2", Dynamic: true, Needed: []string{"liba.so.1", "libc.so.6"},
				RPath: "$ORIGIN/../lib", HasRPath: true, Flags1: uint64(elf.DF_1_NODEFLIB)},
		},
		{
			name: "library with runpath hides rpath",
			opts: synthOpts{Soname: "liba.so.1", RPath: "/r", RunPath: "/run"},
			want: &File{Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Type: elf.ET_DYN, Machine: elf.EM_X86_64,
				Dynamic: true, Soname: "liba.so.1", RunPath: "/run", HasRunPath: true},
		},
		{
			name: "32-bit i386",
			opts: synthOpts{Class: elf.ELFCLASS32, Machine: elf.EM_386, Interp: "/lib/ld-linux.so.2", Needed: []string{"libc.so.6"}},
			want: &File{Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Type: elf.ET_DYN, Machine: elf.EM_386,
				Interp: "/lib/ld-linux.so.2", Dynamic: true, Needed: []string{"libc.so.6"}},
		},
		{
			name: "big-endian s390x",
			opts: synthOpts{Data: elf.ELFDATA2MSB, Machine: elf.EM_S390, Needed: []string{"libc.so.6"}, Soname: "libz.so.1"},
			want: &File{Class: elf.ELFCLASS64, Data: elf.ELFDATA2MSB, Type: elf.ET_DYN, Machine: elf.EM_S390,
				Dynamic: true, Needed: []string{"libc.so.6"}, Soname: "libz.so.1"},
		},
		{
			name: "static",
			opts: synthOpts{Type: elf.ET_EXEC, Static: true},
			want: &File{Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Type: elf.ET_EXEC, Machine: elf.EM_X86_64},
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
			if diff := cmp.Diff(tc.want, got, opt); diff != "" {
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
