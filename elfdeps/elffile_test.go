package elfdeps

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// readHostFile returns a file of this machine, skipping the test when it does not exist.
func hostFileOrSkip(t testing.TB, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Skipf("no %s on this machine: %v", p, err)
	}
	return data
}

// parseBytes calls ParseELF, failing the test if it panics (it must turn hostile input into errors).
func parseOrFail(t testing.TB, data []byte) (f *File, err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("ParseELF panicked on %d bytes: %v", len(data), p)
		}
	}()
	return ParseELF(bytes.NewReader(data), int64(len(data)))
}

// TestParseELFEveryPrefix parses every prefix of a small real program: each is a result or an error of a known
// kind, never a panic, and only the whole file gives the whole answer.
func TestParseELFEveryPrefix(t *testing.T) {
	for _, p := range []string{"/bin/true", "/usr/bin/true"} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		want, err := parseOrFail(t, data)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if want.Interp == "" || len(want.Needed) == 0 {
			t.Fatalf("%s: Interp %q, Needed %q: want a dynamically linked program", p, want.Interp, want.Needed)
		}
		for n := 0; n <= len(data); n++ {
			got, err := parseOrFail(t, data[:n])
			if err != nil {
				if !errors.Is(err, ErrBadELF) && !errors.Is(err, ErrNotELF) {
					t.Errorf("%s[:%d]: error %v is neither ErrBadELF nor ErrNotELF", p, n, err)
				}
				if n >= 4 && errors.Is(err, ErrNotELF) {
					t.Errorf("%s[:%d]: ErrNotELF for a file that starts with the ELF magic", p, n)
				}
				continue
			}
			if n < 64 {
				t.Errorf("%s[:%d]: parsed a file shorter than its ELF header: %+v", p, n, got)
			}
		}
		got, _ := parseOrFail(t, data)
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(File{}, phdr{})); diff != "" {
			t.Errorf("%s parsed twice differs (-first +second):\n%s", p, diff)
		}
		return
	}
	t.Skip("no /bin/true on this machine")
}

// TestParseELFMatchesDebugELF compares ParseELF with debug/elf's view (section headers) of real binaries.
func TestParseELFMatchesDebugELF(t *testing.T) {
	files := []string{"/bin/ls", "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libz.so.1", synthRTLDPath}
	ran := false
	for _, p := range files {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		ran = true
		t.Run(p, func(t *testing.T) {
			data := hostFileOrSkip(t, p)
			got, err := parseOrFail(t, data)
			if err != nil {
				t.Fatalf("ParseELF: %v", err)
			}
			ef, err := elf.NewFile(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("debug/elf: %v", err)
			}
			defer ef.Close()
			want := &File{Class: ef.Class, Data: ef.Data, OSABI: ef.OSABI, Type: ef.Type, Machine: ef.Machine}
			for _, prog := range ef.Progs {
				switch prog.Type {
				case elf.PT_INTERP:
					b := make([]byte, prog.Filesz)
					if _, err := prog.ReadAt(b, 0); err != nil {
						t.Fatal(err)
					}
					want.Interp = string(bytes.TrimRight(b, "\x00"))
				case elf.PT_DYNAMIC:
					want.Dynamic = true
				}
			}
			if want.Needed, err = ef.ImportedLibraries(); err != nil {
				t.Fatal(err)
			}
			one := func(tag elf.DynTag) (string, bool) {
				v, err := ef.DynString(tag)
				if err != nil {
					t.Fatal(err)
				}
				if len(v) == 0 {
					return "", false
				}
				return v[0], true
			}
			want.Soname, _ = one(elf.DT_SONAME)
			want.RPath, want.HasRPath = one(elf.DT_RPATH)
			want.RunPath, want.HasRunPath = one(elf.DT_RUNPATH)
			if want.HasRunPath {
				want.RPath, want.HasRPath = "", false
			}
			if v, err := ef.DynValue(elf.DT_FLAGS_1); err == nil && len(v) > 0 {
				want.Flags1 = v[0]
			}
			// Symbol versions, as debug/elf reads them through the section headers (it has no hashes).
			if needs, err := ef.DynamicVersionNeeds(); err == nil {
				for _, n := range needs {
					vn := VersionNeed{File: n.Name}
					for _, d := range n.Needs {
						vn.Versions = append(vn.Versions, VersionReq{Name: d.Dep, Weak: d.Flags&elf.VER_FLG_WEAK != 0})
					}
					want.VersionNeeds = append(want.VersionNeeds, vn)
				}
			}
			if defs, err := ef.DynamicVersions(); err == nil && len(defs) > 0 {
				for _, d := range defs {
					want.VersionDefs = append(want.VersionDefs, VersionDef{Name: d.Name, Base: d.Flags&elf.VER_FLG_BASE != 0})
				}
			}
			// Compare what debug/elf can see; e_flags is not exported by it for every class, and the
			// unexported loader checks are checked elsewhere.
			got.Flags = 0
			if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(File{}), cmpopts.IgnoreFields(VersionReq{}, "Hash"), cmpopts.IgnoreFields(VersionDef{}, "Hash")); diff != "" {
				t.Errorf("ParseELF vs debug/elf (-debug/elf +ParseELF):\n%s", diff)
			}
			if len(got.hdr) != 64 {
				t.Errorf("raw header is %d bytes, want the whole 64-byte ELF64 header", len(got.hdr))
			}
			if p != synthRTLDPath && got.osABITag != -1 && got.osABITag != 0 {
				t.Errorf("osABITag = %d, want 0 (Linux) or -1 (no note)", got.osABITag)
			}
		})
	}
	if !ran {
		t.Skip("none of the reference binaries exists on this machine")
	}
}

// TestParseELFMalformed: hostile headers are errors of a known kind.
func TestParseELFMalformed(t *testing.T) {
	good := synthOpts{Needed: []string{"liba.so"}, Soname: "libx.so"}
	// Offsets of the synthetic 64-bit layout: header (64), two program headers (56 each) from 64:
	// PT_LOAD at 64, PT_DYNAMIC at 120.
	const (
		phnum      = 56
		phoff      = 32
		dynOffset  = 120 + 8
		dynFilesz  = 120 + 32
		loadFilesz = 64 + 32
	)
	tests := []struct {
		name  string
		data  func(t *testing.T) []byte
		is    error
		check func(t *testing.T, f *File)
	}{
		{"empty", func(*testing.T) []byte { return nil }, ErrBadELF, nil},
		{"text", func(*testing.T) []byte { return []byte("#!/bin/sh\nexit 0\n") }, ErrNotELF, nil},
		{"short text", func(*testing.T) []byte { return []byte("#!/b") }, ErrNotELF, nil},
		{"magic only", func(*testing.T) []byte { return []byte("\x7fELF") }, ErrBadELF, nil},
		{"unknown class", func(t *testing.T) []byte { return synthPatched(t, good, map[int]byte{offClass: 9}) }, ErrBadELF, nil},
		{"unknown data encoding", func(t *testing.T) []byte { return synthPatched(t, good, map[int]byte{offData: 0}) }, ErrBadELF, nil},
		{"program headers past the end", func(t *testing.T) []byte { return synthPatched(t, good, map[int]byte{phoff + 1: 0x10}) }, ErrBadELF, nil},
		{"65535 program headers", func(t *testing.T) []byte { return synthPatched(t, good, map[int]byte{phnum: 0xff, phnum + 1: 0xff}) }, ErrBadELF, nil},
		{"PT_DYNAMIC past the end", func(t *testing.T) []byte { return synthPatched(t, good, map[int]byte{dynOffset + 2: 0x01}) }, ErrBadELF, nil},
		{"PT_DYNAMIC of 2^56 bytes", func(t *testing.T) []byte { return synthPatched(t, good, map[int]byte{dynFilesz + 7: 0x01}) }, ErrBadELF, nil},
		{"DT_STRTAB outside every PT_LOAD", func(t *testing.T) []byte {
			return synthPatched(t, good, map[int]byte{loadFilesz: 0x01, loadFilesz + 1: 0})
		}, ErrBadELF, nil},
		{"no program headers", func(t *testing.T) []byte { return synthPatched(t, good, map[int]byte{phnum: 0}) }, nil, func(t *testing.T, f *File) {
			if f.Dynamic || f.Interp != "" || len(f.Needed) != 0 {
				t.Errorf("%+v: want nothing but the header", f)
			}
		}},
		{"e_phentsize 48 < 56", func(t *testing.T) []byte { return synthPatched(t, good, map[int]byte{offPhentsize: 48}) }, ErrBadELF, nil},
		{"e_phentsize 64 > 56", func(t *testing.T) []byte { return synthPatched(t, good, map[int]byte{offPhentsize: 64}) }, nil, func(t *testing.T, f *File) {
			if got := binary.LittleEndian.Uint16(f.hdr[54:]); got != 64 {
				t.Errorf("raw e_phentsize = %d, want 64 kept for the loader's check", got)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data(t)
			f, err := parseOrFail(t, data)
			if tc.is == nil {
				if err != nil {
					t.Fatalf("ParseELF: %v", err)
				}
				tc.check(t, f)
				return
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("ParseELF = %+v, %v; want %v", f, err, tc.is)
			}
		})
	}
}

func synthPatched(t *testing.T, o synthOpts, p map[int]byte) []byte {
	t.Helper()
	o.Patch = p
	return synthELF(t, o)
}
