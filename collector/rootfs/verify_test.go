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
)

// TestOpenVerifiedDir plans a file (Lstat), changes the tree as an attacker or a package upgrade would,
// then opens it verified.
func TestOpenVerifiedDir(t *testing.T) {
	tests := []struct {
		name    string
		change  func(t *testing.T, root string) // what happens between planning and copying
		wantErr []error                         // nil: the open succeeds
		wantMsg string
	}{
		{name: "unchanged", change: func(*testing.T, string) {}},
		{
			name: "replaced by a link to /etc/shadow",
			change: func(t *testing.T, root string) {
				replace(t, root, func(p string) error { return os.Symlink("/etc/shadow", p) })
			},
			wantErr: []error{ErrChanged, syscall.ELOOP},
		},
		{
			name: "a parent replaced by a link",
			change: func(t *testing.T, root string) {
				must(t, os.Rename(filepath.Join(root, "lib"), filepath.Join(root, "elsewhere")))
				must(t, os.Symlink("elsewhere", filepath.Join(root, "lib")))
			},
			wantErr: []error{ErrChanged, syscall.ELOOP},
		},
		{
			name: "replaced by a larger file",
			change: func(t *testing.T, root string) {
				replace(t, root, func(p string) error { return os.WriteFile(p, []byte("something else!"), 0o644) })
			},
			wantErr: []error{ErrChanged},
			wantMsg: "size 15, was 10",
		},
		{
			name: "rewritten in place, shorter",
			change: func(t *testing.T, root string) {
				must(t, os.WriteFile(filepath.Join(root, "lib/libx.so"), []byte("short"), 0o644))
			},
			wantErr: []error{ErrChanged},
			wantMsg: `"lib/libx.so" in ` + "ROOT" + " is no longer the file that was planned: size 5, was 10",
		},
		{
			name: "touched",
			change: func(t *testing.T, root string) {
				p := filepath.Join(root, "lib/libx.so")
				must(t, os.Chtimes(p, time.Time{}, time.Unix(1e9, 0)))
			},
			wantErr: []error{ErrChanged},
			wantMsg: "modified 2001-09-09T01:46:40Z, was",
		},
		{
			name: "another file of the same size and time",
			change: func(t *testing.T, root string) {
				p := filepath.Join(root, "lib/libx.so")
				fi, err := os.Stat(p)
				must(t, err)
				replace(t, root, func(p string) error { return os.WriteFile(p, []byte("0123456789"), 0o644) })
				must(t, os.Chtimes(p, time.Time{}, fi.ModTime()))
			},
			wantErr: []error{ErrChanged},
			wantMsg: "inode",
		},
		{
			name: "replaced by a directory",
			change: func(t *testing.T, root string) {
				p := filepath.Join(root, "lib/libx.so")
				must(t, os.Remove(p))
				must(t, os.Mkdir(p, 0o755))
			},
			wantErr: []error{ErrChanged},
			wantMsg: "it is now a directory",
		},
		{
			name: "replaced by a named pipe",
			change: func(t *testing.T, root string) {
				replace(t, root, func(p string) error { return syscall.Mkfifo(p, 0o644) })
			},
			wantErr: []error{ErrChanged},
			wantMsg: "it is now a named pipe",
		},
		{
			name:    "removed",
			change:  func(t *testing.T, root string) { must(t, os.Remove(filepath.Join(root, "lib/libx.so"))) },
			wantErr: []error{ErrChanged, fs.ErrNotExist},
		},
	}
	for _, m := range dirModes {
		for _, tc := range tests {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				root := t.TempDir()
				must(t, os.Mkdir(filepath.Join(root, "lib"), 0o755))
				must(t, os.WriteFile(filepath.Join(root, "lib/libx.so"), []byte("0123456789"), 0o644))
				d := openTestDir(t, root, m.legacy)
				fi, err := d.Lstat("lib/libx.so")
				must(t, err)

				tc.change(t, root)
				f, err := OpenVerified(d, "lib/libx.so", MetaOf(fi))
				if tc.wantErr == nil {
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
					if data, err := io.ReadAll(f); err != nil || string(data) != "0123456789" {
						t.Errorf("reading: %q, %v", data, err)
					}
					return
				}
				if err == nil {
					f.Close()
					t.Fatal("no error")
				}
				for _, want := range tc.wantErr {
					if !errors.Is(err, want) {
						t.Errorf("%v: want errors.Is %v", err, want)
					}
				}
				if msg := strings.ReplaceAll(tc.wantMsg, "ROOT", root); !strings.Contains(err.Error(), msg) {
					t.Errorf("%v: want it to say %q", err, msg)
				}
			})
		}
	}
}

func TestOpenVerifiedImage(t *testing.T) {
	lower := layerOf(t, file("a", "lower"), file("b", "b"))
	upper := layerOf(t, file("a", "upper"))
	im := newTestImage(t, imageOf(t, lower, upper))
	fi, err := im.Lstat("a")
	must(t, err)
	planned := MetaOf(fi)

	f, err := OpenVerified(im, "a", planned)
	must(t, err)
	if data, err := io.ReadAll(f); err != nil || string(data) != "upper" {
		t.Errorf("reading: %q, %v", data, err)
	}
	f.Close()

	for _, tc := range []struct {
		name string
		file string
		meta func(m *Meta)
		want string
	}{
		{"another layer", "a", func(m *Meta) { m.Layer = digestOf(t, lower) }, "layer " + digestOf(t, upper) + ", was " + digestOf(t, lower)},
		{"another offset", "a", func(m *Meta) { m.Offset += 100 }, "offset"},
		{"another size", "a", func(m *Meta) { m.Size = 6 }, "size 5, was 6"},
		{"a directory now", ".", func(*Meta) {}, "it is now a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := planned
			tc.meta(&m)
			_, err := OpenVerified(im, tc.file, m)
			if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenVerified: %v, want ErrChanged saying %q", err, tc.want)
			}
		})
	}
}

// replace puts another file at lib/libx.so, by rename as package managers do.
func replace(t *testing.T, root string, create func(p string) error) {
	t.Helper()
	tmp := filepath.Join(root, "lib/.new")
	must(t, create(tmp))
	must(t, os.Rename(tmp, filepath.Join(root, "lib/libx.so")))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
