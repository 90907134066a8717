package elfdeps

import (
	"bytes"
	"debug/elf"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// fuzzSeedFiles are real binaries of this machine the fuzzer starts from (the missing ones are left out), the
// smallest shared library of the multiarch directory besides.
func fuzzSeedFiles() []string {
	files := []string{"/bin/true", synthRTLDPath}
	libs, _ := filepath.Glob("/lib/x86_64-linux-gnu/lib*.so.*")
	var smallest string
	var size int64
	for _, l := range libs {
		if st, err := os.Stat(l); err == nil && st.Mode().IsRegular() && st.Size() > 0 && (smallest == "" || st.Size() < size) {
			smallest, size = l, st.Size()
		}
	}
	if smallest != "" {
		files = append(files, smallest)
	}
	return files
}

// fuzzSeedSynth are synthetic seeds: each loader-relevant feature, and headers just off the accepted ones.
func fuzzSeedSynth() []synthOpts {
	return []synthOpts{
		synthExe(synthOpts{Needed: []string{"libfuzz.so", "libc.so.6"}, RPath: "$ORIGIN/../lib:/opt/$LIB", RunPath: "${ORIGIN}"}),
		synthExe(synthOpts{Needed: []string{"libfuzz.so", "/lib/x86_64-linux-gnu/libfuzz.so"}, Flags1: uint64(elf.DF_1_NODEFLIB)}),
		synthMuslExe(synthOpts{Needed: []string{"libfuzz.so", "libc.so"}, RunPath: "$ORIGIN:/opt/r"}),
		{Needed: []string{"libfuzz.so", "ld-linux-x86-64.so.2"}, Soname: "libfuzz.so", RPath: "/lib:$PLATFORM"},
		{Class: elf.ELFCLASS32, Machine: elf.EM_386, Interp: "/lib/ld-linux.so.2", Needed: []string{"libfuzz.so"}},
		{Data: elf.ELFDATA2MSB, Machine: elf.EM_S390, Needed: []string{"libfuzz.so"}},
		{Type: elf.ET_EXEC, Static: true},
		synthRTLD(),
		{Needed: []string{"libfuzz.so"}, Patch: map[int]byte{offPhentsize: 48}},
		{Needed: []string{"libfuzz.so"}, Patch: map[int]byte{offOSABI: 9, offPad: 1}},
	}
}

// FuzzNewBinary feeds arbitrary bytes to the ELF boundary: ParseELF, and a whole resolution in which the bytes
// are the program, the library it needs and its interpreter. Nothing may panic or hang.
func FuzzNewBinary(f *testing.F) {
	for _, p := range fuzzSeedFiles() {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	for _, o := range fuzzSeedSynth() {
		f.Add(synthELF(f, o))
	}
	rtld := synthELF(f, synthRTLD())

	f.Fuzz(func(t *testing.T, data []byte) {
		// The parser itself must not panic: ParseELF's recover is a safety net, not the design.
		file, err := func() (file *File, err error) {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("parseELF panicked: %v", p)
				}
			}()
			return parseELF(bytes.NewReader(data), int64(len(data)))
		}()
		pf, perr := ParseELF(bytes.NewReader(data), int64(len(data)))
		if (err == nil) != (perr == nil) {
			t.Fatalf("parseELF error %v, ParseELF error %v", err, perr)
		}
		if err != nil {
			if !errors.Is(err, ErrBadELF) && !errors.Is(err, ErrNotELF) {
				t.Fatalf("error %v is neither ErrBadELF nor ErrNotELF", err)
			}
		} else {
			for _, s := range append(slices.Clone(pf.Needed), pf.Interp, pf.Soname, pf.RPath, pf.RunPath) {
				if strings.IndexByte(s, 0) >= 0 {
					t.Fatalf("string %q holds a NUL", s)
				}
			}
		}

		// A root in which the fuzzed bytes are the program, the library it needs (under every name it needs
		// that is a plain file name) and its interpreter when that is a path the root can hold.
		fsys := fstest.MapFS{
			"bin/prog":                        {Data: data, Mode: 0o755},
			"lib/x86_64-linux-gnu/libfuzz.so": {Data: data},
			"lib64/ld-linux-x86-64.so.2":      {Data: rtld},
			"lib/ld-musl-x86_64.so.1":         {Data: data},
		}
		if file != nil {
			for _, n := range file.Needed {
				if p := "lib/x86_64-linux-gnu/" + n; !strings.Contains(n, "/") && fs.ValidPath(p) {
					fsys[p] = &fstest.MapFile{Data: data}
				}
			}
			if p := strings.TrimPrefix(file.Interp, "/"); fs.ValidPath(p) && p != "." && fsys[p] == nil && !strings.HasPrefix(p, "lib64/") {
				fsys[p] = &fstest.MapFile{Data: data}
			}
		}
		for _, input := range []string{"/bin/prog", "/lib/x86_64-linux-gnu/libfuzz.so"} {
			r, err := New(fsys, WithCPU(synthCPU), WithLibraryPath("/lib:$ORIGIN"), WithWorkDir("/bin"))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan any, 1)
			go func() {
				defer func() { done <- recover() }()
				res, err := r.Resolve(input)
				if err == nil && res == nil {
					panic("Resolve returned neither a result nor an error")
				}
				if err == nil {
					_ = res.Err()
					_ = res.Paths()
				}
			}()
			select {
			case p := <-done:
				if p != nil {
					t.Fatalf("Resolve(%s) panicked: %v", input, p)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("Resolve(%s) did not return", input)
			}
		}
	})
}

// FuzzLDSoConf parses hostile ld.so.conf files (an include of a fuzzed file from a fuzzed one, and of
// itself): it must end, and give only absolute, clean directories, each once. Seeded from testdata/ldsoconf.
func FuzzLDSoConf(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/ldsoconf/*.conf")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, []byte("include /etc/ld.so.conf\n/opt/x\n"))
	}
	f.Fuzz(func(t *testing.T, conf, included []byte) {
		fsys := fstest.MapFS{
			"etc/ld.so.conf":          {Data: conf},
			"etc/ld.so.conf.d/a.conf": {Data: included},
			"etc/ld.so.conf.d/b.conf": {Data: []byte("include /etc/ld.so.conf.d/*.conf\n")},
		}
		r, err := New(fsys, WithCPU(BaselineCPU))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan []string, 1)
		go func() { done <- r.confDirs() }()
		var dirs []string
		select {
		case dirs = <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("confDirs did not end within 5 s")
		}
		seen := map[string]bool{}
		for _, d := range dirs {
			if !strings.HasPrefix(d, "/") || d != filepath.Clean(d) || seen[d] {
				t.Errorf("directory %q (all: %q)", d, dirs)
			}
			seen[d] = true
		}
	})
}
