package rootfs

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestWithHostFiles(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"usr/lib", "etc"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, data string) string {
		t.Helper()
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write(filepath.Join(base, "usr/lib/libc.so.6"), "libc")
	write(filepath.Join(base, "etc/svc"), "the root's own")
	if err := os.Symlink("usr/lib", filepath.Join(base, "lib")); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	svc := write(filepath.Join(host, "svc"), "service")
	tool := write(filepath.Join(host, "tool"), "tool")
	root := openTestDir(t, base, false)

	o, err := WithHostFiles(root, map[string]string{"/lib/svc": svc, "/app/bin/tool": tool, "/etc/svc": svc})
	if err != nil {
		t.Fatal(err)
	}
	// Through the /lib link the service is in usr/lib, beside the root's own files.
	names := func(dir string) []string {
		t.Helper()
		ents, err := o.ReadDir(dir)
		if err != nil {
			t.Fatalf("ReadDir(%s): %v", dir, err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name()+map[bool]string{true: "/"}[e.IsDir()])
		}
		return out
	}
	if got, want := names("usr/lib"), []string{"libc.so.6", "svc"}; !slices.Equal(got, want) {
		t.Errorf("usr/lib holds %v, want %v", got, want)
	}
	if got, want := names("."), []string{"app/", "etc/", "lib", "usr/"}; !slices.Equal(got, want) {
		t.Errorf("the root holds %v, want %v", got, want)
	}
	read := func(name string) string {
		t.Helper()
		f, err := o.Open(name)
		if err != nil {
			t.Fatalf("Open(%s): %v", name, err)
		}
		defer f.Close()
		data, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	if got := read("usr/lib/svc"); got != "service" {
		t.Errorf("usr/lib/svc reads %q", got)
	}
	if got := read("app/bin/tool"); got != "tool" {
		t.Errorf("app/bin/tool reads %q", got)
	}
	if got := read("etc/svc"); got != "service" {
		t.Errorf("etc/svc reads %q: the host file must hide the root's", got)
	}
	if fi, err := o.Lstat("app/bin"); err != nil || !fi.IsDir() {
		t.Errorf("app/bin: %v, %v: want a directory", fi, err)
	}
	if _, err := o.Lstat("lib/svc"); err == nil {
		t.Error("lib/svc is found by Lstat: only the resolved name holds the file (the caller resolves links)")
	}
	// fstest opens every name, and a Dir refuses to open a link: the overlay keeps the resolved names.
	if err := os.Remove(filepath.Join(base, "lib")); err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(o, "usr/lib/svc", "app/bin/tool", "etc/svc", "usr/lib/libc.so.6"); err != nil {
		t.Error(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWithHostFilesRefuses(t *testing.T) {
	base := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(t.TempDir(), "svc")
	if err := os.WriteFile(host, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	root := openTestDir(t, base, false)
	for _, c := range []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{"relative": host}, "not a clean absolute"},
		{map[string]string{"/file/svc": host}, "not a directory"},
		{map[string]string{"/a": host, "/a/b": host}, "is a file put there"},
	} {
		_, err := WithHostFiles(root, c.files)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("WithHostFiles(%v) = %v, want an error with %q", c.files, err, c.want)
		}
	}
	// A host name that is a link is not followed when opened.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(host, link); err != nil {
		t.Fatal(err)
	}
	o, err := WithHostFiles(root, map[string]string{"/svc": link})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Open("svc"); err == nil {
		t.Error("a host file that is a link was opened")
	}
	var _ fs.ReadDirFS = o
}
