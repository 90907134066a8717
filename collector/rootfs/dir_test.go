package rootfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scratchpack/scratchpack/elfdeps"
	"golang.org/x/sys/unix"
)

// dirModes are the ways a Dir resolves names: openat2, and the openat walk of kernels without it (which
// also reopens regular files by name, as without /proc).
var dirModes = []struct {
	name   string
	legacy bool
}{
	{"openat2", false},
	{"walk", true},
}

func openTestDir(t *testing.T, dir string, legacy bool) *Dir {
	t.Helper()
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if legacy {
		d.noOpenat2.Store(true)
		d.noProc = true
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// testTree makes a small tree:
//
//	bin/prog (0755, "program"), bin/suid (04755), lib/libc.so.6 ("libc"), lib/libc.so -> libc.so.6,
//	lib64 -> lib, etc/ (0700), escape -> /, up -> ../../.., fifo (a named pipe), dangling -> nowhere
func testTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	mkdir := func(p string, mode os.FileMode) {
		if err := os.Mkdir(filepath.Join(root, p), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(root, p), mode); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(root, p), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(root, p), mode); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("bin", 0o755)
	mkdir("lib", 0o755)
	mkdir("etc", 0o700)
	write("bin/prog", "program", 0o755)
	write("bin/suid", "s", 0o755|os.ModeSetuid)
	write("lib/libc.so.6", "libc", 0o644)
	link("libc.so.6", "lib/libc.so")
	link("lib", "lib64")
	link("/", "escape")
	link("../../..", "up")
	link("nowhere", "dangling")
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestLstatAndReadDir(t *testing.T) {
	root := testTree(t)
	type ent struct {
		Name   string
		Mode   string
		Size   int64
		Target string
	}
	// The listing of every directory, walked through ReadDir and Lstat, as os.Lstat sees it.
	var want []ent
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := ent{Name: filepath.ToSlash(rel), Mode: fi.Mode().String()}
		if fi.Mode().IsRegular() {
			e.Size = fi.Size()
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			e.Target, _ = os.Readlink(p)
		}
		want = append(want, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range testRoots(t, root) {
		t.Run(r.name, func(t *testing.T) {
			d := r.fsys
			_, isDir := d.(*Dir)
			var got []ent
			err := fs.WalkDir(d, ".", func(p string, de fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				fi, err := d.Lstat(p)
				if err != nil {
					return err
				}
				if de.Type() != fi.Mode().Type() {
					t.Errorf("%s: ReadDir says type %v, Lstat %v", p, de.Type(), fi.Mode().Type())
				}
				info, err := de.Info()
				if err != nil {
					return err
				}
				if info.Mode() != fi.Mode() {
					t.Errorf("%s: DirEntry.Info mode %v, Lstat %v", p, info.Mode(), fi.Mode())
				}
				e := ent{Name: p, Mode: fi.Mode().String()}
				if fi.Mode().IsRegular() {
					e.Size = fi.Size()
				}
				if fi.Mode()&fs.ModeSymlink != 0 {
					if e.Target, err = d.ReadLink(p); err != nil {
						return err
					}
				}
				got = append(got, e)
				if !isDir {
					return nil
				}
				// A Dir's Meta is the stat's.
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(root, p), &st); err != nil {
					return err
				}
				sec, nsec := st.Mtim.Unix()
				wantMeta := Meta{UID: int(st.Uid), GID: int(st.Gid), Dev: st.Dev, Ino: st.Ino, Size: st.Size,
					ModTime: time.Unix(sec, nsec)}
				if diff := cmp.Diff(wantMeta, MetaOf(fi)); diff != "" {
					t.Errorf("%s: Meta (-want +got):\n%s", p, diff)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("listing (-want +got):\n%s", diff)
			}
		})
	}
}

// testRoots are the roots over a directory tree: a Dir both ways, and an image of the tree.
func testRoots(t *testing.T, root string) []struct {
	name string
	fsys FS
} {
	return []struct {
		name string
		fsys FS
	}{
		{"openat2", openTestDir(t, root, false)},
		{"walk", openTestDir(t, root, true)},
		{"image", newTestImage(t, imageOfDir(t, root))},
	}
}

// TestNeverFollows checks that no operation crosses a symbolic link, and that errors keep their errno,
// the same in a Dir and in an Image.
func TestNeverFollows(t *testing.T) {
	root := testTree(t)
	type op struct {
		name string
		do   func(FS, string) error
	}
	ops := []op{
		{"Open", func(d FS, n string) error {
			f, err := d.Open(n)
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"ReadDir", func(d FS, n string) error { _, err := d.ReadDir(n); return err }},
		{"Lstat", func(d FS, n string) error { _, err := d.Lstat(n); return err }},
		{"ReadLink", func(d FS, n string) error { _, err := d.ReadLink(n); return err }},
	}
	tests := []struct {
		name string
		want error            // for every op, unless ops says otherwise
		ops  map[string]error // op -> error (nil: succeeds)
	}{
		{name: "escape/etc/passwd", want: syscall.ELOOP},
		{name: "up/etc/passwd", want: syscall.ELOOP},
		{name: "lib64/libc.so.6", want: syscall.ELOOP},
		{name: "escape", ops: map[string]error{"Open": syscall.ELOOP, "ReadDir": syscall.ELOOP, "Lstat": nil, "ReadLink": nil}},
		{name: "lib/libc.so", ops: map[string]error{"Open": syscall.ELOOP, "ReadDir": syscall.ELOOP, "Lstat": nil, "ReadLink": nil}},
		{name: "dangling", ops: map[string]error{"Open": syscall.ELOOP, "ReadDir": syscall.ELOOP, "Lstat": nil, "ReadLink": nil}},
		{name: "missing", want: fs.ErrNotExist},
		{name: "bin/missing/x", want: fs.ErrNotExist},
		{name: "bin/prog/x", want: syscall.ENOTDIR},
		{name: "/etc", want: fs.ErrInvalid},
		{name: "../etc", want: fs.ErrInvalid},
		{name: "bin/../etc", want: fs.ErrInvalid},
		{name: "bin/", want: fs.ErrInvalid},
		{name: "", want: fs.ErrInvalid},
		{name: "bin/prog", ops: map[string]error{"Open": nil, "ReadDir": syscall.ENOTDIR, "Lstat": nil, "ReadLink": syscall.EINVAL}},
		{name: ".", ops: map[string]error{"Open": nil, "ReadDir": nil, "Lstat": nil, "ReadLink": syscall.EINVAL}},
		{name: "fifo", ops: map[string]error{"Open": nil, "ReadDir": syscall.ENOTDIR, "Lstat": nil, "ReadLink": syscall.EINVAL}},
	}
	for _, r := range testRoots(t, root) {
		t.Run(r.name, func(t *testing.T) {
			d := r.fsys
			for _, tc := range tests {
				for _, o := range ops {
					t.Run(tc.name+"/"+o.name, func(t *testing.T) {
						want, ok := tc.ops[o.name]
						if !ok {
							want = tc.want
						}
						err := o.do(d, tc.name)
						if want == nil {
							if err != nil {
								t.Fatalf("%s(%q): %v", o.name, tc.name, err)
							}
							return
						}
						if !errors.Is(err, want) {
							t.Fatalf("%s(%q): %v, want %v", o.name, tc.name, err, want)
						}
						var pe *fs.PathError
						if !errors.As(err, &pe) || pe.Path != tc.name {
							t.Errorf("%s(%q): %#v, want an *fs.PathError naming %q", o.name, tc.name, err, tc.name)
						}
					})
				}
			}
		})
	}
}

func TestDirOpen(t *testing.T) {
	root := testTree(t)
	for _, m := range dirModes {
		t.Run(m.name, func(t *testing.T) {
			d := openTestDir(t, root, m.legacy)

			f, err := d.Open("bin/prog")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			data, err := io.ReadAll(f)
			if err != nil || string(data) != "program" {
				t.Errorf("reading bin/prog: %q, %v", data, err)
			}
			ra, ok := f.(io.ReaderAt)
			if !ok {
				t.Fatalf("%T is not an io.ReaderAt", f)
			}
			buf := make([]byte, 4)
			if _, err := ra.ReadAt(buf, 3); err != nil || string(buf) != "gram" {
				t.Errorf("ReadAt(3): %q, %v", buf, err)
			}
			if _, err := f.(io.Seeker).Seek(1, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			if data, _ := io.ReadAll(f); string(data) != "rogram" {
				t.Errorf("after Seek(1): %q", data)
			}
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			lfi, err := d.Lstat("bin/prog")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(MetaOf(lfi), MetaOf(fi)); diff != "" {
				t.Errorf("the opened file's Meta differs from Lstat's (-lstat +stat):\n%s", diff)
			}
			if fi.Name() != "prog" || fi.Mode() != 0o755 || fi.Size() != 7 {
				t.Errorf("Stat: %v", fs.FormatFileInfo(fi))
			}

			// A directory reads in pages, sorted.
			df, err := d.Open("lib")
			if err != nil {
				t.Fatal(err)
			}
			defer df.Close()
			rdf := df.(fs.ReadDirFile)
			var names []string
			for {
				ents, err := rdf.ReadDir(1)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range ents {
					names = append(names, e.Name())
				}
			}
			if diff := cmp.Diff([]string{"libc.so", "libc.so.6"}, names); diff != "" {
				t.Errorf("ReadDir(1) pages (-want +got):\n%s", diff)
			}
			if _, err := df.Read(buf); !errors.Is(err, syscall.EISDIR) {
				t.Errorf("reading a directory: %v, want EISDIR", err)
			}

			// A FIFO opens without blocking and cannot be read.
			ff, err := d.Open("fifo")
			if err != nil {
				t.Fatal(err)
			}
			defer ff.Close()
			if fi, err := ff.Stat(); err != nil || fi.Mode().Type() != fs.ModeNamedPipe {
				t.Errorf("Stat of the FIFO: %v, %v", fi, err)
			}
			if _, err := ff.Read(buf); err == nil {
				t.Error("reading the FIFO: no error")
			}
		})
	}
}

func TestDirClosed(t *testing.T) {
	d, err := OpenDir(testTree(t))
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.Open("bin/prog")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open("bin/prog"); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Open after Close: %v, want fs.ErrClosed", err)
	}
	if _, err := d.Lstat("."); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Lstat after Close: %v, want fs.ErrClosed", err)
	}
	if data, err := io.ReadAll(f); err != nil || string(data) != "program" {
		t.Errorf("a file opened before Close: %q, %v", data, err)
	}
}

func TestOpenDirErrors(t *testing.T) {
	root := testTree(t)
	if _, err := OpenDir(filepath.Join(root, "missing")); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("OpenDir(missing): %v", err)
	}
	if _, err := OpenDir(filepath.Join(root, "bin/prog")); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("OpenDir(a file): %v", err)
	}
}

// TestDirElfdeps resolves a host program through a Dir over "/": elfdeps walks links itself and opens only
// real paths, so it must find what it finds through os.DirFS.
func TestDirElfdeps(t *testing.T) {
	const prog = "/usr/bin/true"
	if _, err := os.Stat(prog); err != nil {
		t.Skipf("this machine has no %s: %v", prog, err)
	}
	ref, err := elfdeps.NewDir("/")
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.Resolve(prog)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Paths()) == 0 {
		t.Skipf("%s is static here: there is no closure to compare", prog)
	}
	for _, m := range dirModes {
		t.Run(m.name, func(t *testing.T) {
			r, err := elfdeps.New(openTestDir(t, "/", m.legacy))
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Resolve(prog)
			if err != nil {
				t.Fatal(err)
			}
			if err := got.Err(); err != nil {
				t.Error(err)
			}
			if diff := cmp.Diff(want.Paths(), got.Paths()); diff != "" {
				t.Errorf("Paths (-os.DirFS +Dir):\n%s", diff)
			}
			if got.Input.RealPath != want.Input.RealPath {
				t.Errorf("RealPath %s, want %s", got.Input.RealPath, want.Input.RealPath)
			}
		})
	}
}

// TestDirElfdepsSysroot resolves a program inside a synthetic sysroot whose libraries are reached through
// a link (lib64 -> usr/lib64), as elfdeps does for any root.
func TestDirElfdepsSysroot(t *testing.T) {
	root := t.TempDir()
	write := func(p string, data []byte) {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755))
		must(t, os.WriteFile(filepath.Join(root, p), data, 0o755))
	}
	write("usr/lib64/ld-linux-x86-64.so.2", synthELF("", nil, "ld-linux-x86-64.so.2", "\x00/lib64/\x00/usr/lib64/\x00"))
	write("usr/lib64/libfoo.so.1.2", synthELF("", nil, "libfoo.so.1", ""))
	must(t, os.Symlink("libfoo.so.1.2", filepath.Join(root, "usr/lib64/libfoo.so.1")))
	must(t, os.Symlink("usr/lib64", filepath.Join(root, "lib64")))
	write("usr/bin/prog", synthELF("/lib64/ld-linux-x86-64.so.2", []string{"libfoo.so.1"}, "", ""))
	for _, m := range dirModes {
		t.Run(m.name, func(t *testing.T) {
			r, err := elfdeps.New(openTestDir(t, root, m.legacy))
			must(t, err)
			res, err := r.Resolve("/usr/bin/prog")
			must(t, err)
			if err := res.Err(); err != nil {
				t.Error(err)
			}
			if diff := cmp.Diff([]string{"/lib64/ld-linux-x86-64.so.2", "/lib64/libfoo.so.1"}, res.Paths()); diff != "" {
				t.Errorf("Paths (-want +got):\n%s", diff)
			}
		})
	}
}
