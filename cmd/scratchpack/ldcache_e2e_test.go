package main

import (
	"bytes"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scratchpack/scratchpack/elfdeps"
)

// dynamicELFFiles returns the image paths of root's regular files that are dynamically linked ELF objects
// (programs and libraries), the interpreter at interp excepted.
func dynamicELFFiles(t *testing.T, root, interp string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fh, err := os.Open(p)
		if err != nil {
			return err
		}
		defer fh.Close()
		st, err := fh.Stat()
		if err != nil {
			return err
		}
		var magic [4]byte
		if n, _ := fh.ReadAt(magic[:], 0); n < 4 || string(magic[:]) != elf.ELFMAG {
			return nil
		}
		f, err := elfdeps.ParseELF(fh, st.Size())
		if err != nil || !f.Dynamic {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if ip := "/" + filepath.ToSlash(rel); ip != interp {
			if real, err := resolveInRoot(root, interp); err != nil || real != p {
				out = append(out, ip)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkLoaderFindsAll runs the root's own loader (`INTERP --list FILE`, under chroot) over every dynamically
// linked ELF file of a built root: it must find every library of each.
func checkLoaderFindsAll(t *testing.T, root, interp string) {
	t.Helper()
	files := dynamicELFFiles(t, root, interp)
	if len(files) == 0 {
		t.Fatalf("no dynamically linked ELF file in %s", root)
	}
	for _, f := range files {
		stdout, stderr, err := runInRoot(t, root, nil, interp, "--list", f)
		if err != nil || strings.Contains(stdout+stderr, "not found") || strings.Contains(stderr, "Error loading") {
			t.Errorf("the loader in the built root does not find everything %s needs: %v\n%s%s", f, err, stdout, stderr)
		}
	}
}

// copyTree copies a directory tree (cp -a).
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s: %v\n%s", src, err, out)
	}
	return dst
}

// realLDConfigOf returns the cache the host's ldconfig writes for root (`ldconfig -X -r COPY`, on a copy so
// that root stays as built).
func realLDConfigOf(t *testing.T, root string) []byte {
	t.Helper()
	ldconfig, err := exec.LookPath("ldconfig")
	if err != nil {
		ldconfig = "/sbin/ldconfig"
	}
	cp := copyTree(t, root)
	if out, err := exec.Command(ldconfig, "-X", "-r", cp, "-C", "/ldconfig.cache").CombinedOutput(); err != nil {
		t.Fatalf("ldconfig -r: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(cp, "ldconfig.cache"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestE2ELoaderConfig builds images of programs whose libraries the root's loader finds only through its
// cache (/usr/local/lib, an ld.so.conf.d vendor directory, a glibc-hwcaps copy) or musl's path file, and
// checks them with the real loaders and the real ldconfig.
func TestE2ELoaderConfig(t *testing.T) {
	needRoot(t)
	fx := fixtures(t)
	sysroot := filepath.Join(fx, "ldcache/root")
	// The sysroot's own run is the reference: what its loader maps, what the program prints.
	want := mustRunInRoot(t, sysroot, nil, "/usr/bin/prog")
	wantList := tracePaths(mustRunInRoot(t, sysroot, nil, interp, "--list", "/usr/bin/prog"))

	noCache := copyTree(t, sysroot) // ld.so.conf without ld.so.cache: the build reads the configured directories
	if err := os.Remove(filepath.Join(noCache, "etc/ld.so.cache")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, root string
		exact      bool // the cache is byte for byte ldconfig's (the root's cache names its generator)
	}{
		{"root with a cache", sysroot, true},
		{"root with ld.so.conf only", noCache, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "img")
			buildOK(t, "--root", tc.root, "/usr/bin/prog", "-o", "dir:"+out)

			if got := mustRunInRoot(t, out, nil, "/usr/bin/prog"); got != want {
				t.Errorf("the image's program prints %q, the sysroot's %q", got, want)
			}
			if diff := cmp.Diff(wantList, tracePaths(mustRunInRoot(t, out, nil, interp, "--list", "/usr/bin/prog"))); diff != "" {
				t.Errorf("the image's loader maps other files than the sysroot's (-sysroot +image):\n%s", diff)
			}
			checkLoaderFindsAll(t, out, interp)

			got, err := os.ReadFile(filepath.Join(out, "etc/ld.so.cache"))
			if err != nil {
				t.Fatal(err)
			}
			real := realLDConfigOf(t, out)
			if tc.exact {
				if !bytes.Equal(got, real) {
					t.Errorf("the image's /etc/ld.so.cache (%d bytes) is not what ldconfig -r writes for it (%d bytes)", len(got), len(real))
				}
			} else {
				gc, err1 := elfdeps.ParseLDCache(got)
				rc, err2 := elfdeps.ParseLDCache(real)
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				if diff := cmp.Diff(rc.Entries, gc.Entries); diff != "" || !cmp.Equal(rc.HWCaps, gc.HWCaps) {
					t.Errorf("the image's cache entries differ from ldconfig -r's (-ldconfig +ours):\n%s", diff)
				}
			}

			// The cache is what makes it start: without it the program cannot find its libraries.
			bare := copyTree(t, out)
			if err := os.Remove(filepath.Join(bare, "etc/ld.so.cache")); err != nil {
				t.Fatal(err)
			}
			if stdout, stderr, err := runInRoot(t, bare, nil, "/usr/bin/prog"); err == nil || !strings.Contains(stderr, "cannot open shared object file") {
				t.Errorf("without its cache the image's program still ran (or failed otherwise): %v\n%s%s", err, stdout, stderr)
			}
		})
	}

	t.Run("musl path file", func(t *testing.T) {
		root := filepath.Join(fx, "ldcache/musl")
		out := filepath.Join(t.TempDir(), "img")
		buildOK(t, "--root", root, "/usr/bin/prog", "-o", "dir:"+out)
		if got := mustRunInRoot(t, out, nil, "/usr/bin/prog"); got != "ldcache/musl/opt/musl/lib/libmp.so.1\n" {
			t.Errorf("the image's musl program prints %q", got)
		}
		checkLoaderFindsAll(t, out, "/lib/ld-musl-x86_64.so.1")
		if _, err := os.Stat(filepath.Join(out, "etc/ld.so.cache")); err == nil {
			t.Errorf("a musl image got a glibc cache")
		}
	})

	t.Run("no cache when none is needed", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "img")
		buildOK(t, filepath.Join(fx, "hello"), "-o", "dir:"+out)
		for _, f := range []string{"etc/ld.so.cache", "etc/ld.so.conf"} {
			if _, err := os.Lstat(filepath.Join(out, f)); err == nil {
				t.Errorf("%s in an image whose libraries are in the default directories", f)
			}
		}
		checkLoaderFindsAll(t, out, interp)
	})
}
