package collector

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTreeAdd(t *testing.T) {
	tr := NewTree()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tr.Add(Entry{Path: "/usr/lib/x/libc.so.6", Kind: KindFile, Mode: 0o644, Data: []byte("elf"), Origins: origins("a")}))
	must(tr.Add(Entry{Path: "/usr/lib/x/libc.so.6", Kind: KindFile, Mode: 0o644, Data: []byte("elf"), Origins: origins("b", "a")}))
	must(tr.Add(Entry{Path: "/lib", Kind: KindSymlink, Target: "usr/lib"}))
	must(tr.Add(Entry{Path: "/tmp", Kind: KindDir, Mode: 0o777 | fs.ModeSticky}))
	must(tr.Add(Entry{Path: "/a/../etc//hosts", Kind: KindFile, Mode: 0o644, Data: []byte("x")}))

	var got []string
	for _, e := range tr.Entries() {
		got = append(got, e.Path+" "+e.Kind.String())
	}
	want := []string{"/ dir", "/etc dir", "/etc/hosts file", "/lib symlink", "/tmp dir", "/usr dir", "/usr/lib dir", "/usr/lib/x dir", "/usr/lib/x/libc.so.6 file"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "b"}, tr.Get("/usr/lib/x/libc.so.6").Why()); diff != "" {
		t.Errorf("reasons merge (-want +got):\n%s", diff)
	}
	if m := tr.Get("/tmp").Mode; m != 0o777|fs.ModeSticky {
		t.Errorf("/tmp mode %v, want 1777", m)
	}

	for _, tc := range []struct {
		name string
		e    Entry
		want string
	}{
		{"conflicting content", Entry{Path: "/etc/hosts", Kind: KindFile, Mode: 0o644, Data: []byte("y")}, "added as"},
		{"file over a directory", Entry{Path: "/usr/lib", Kind: KindFile, Data: []byte("y")}, "added as"},
		{"under a symlink", Entry{Path: "/lib/x/libz.so", Kind: KindFile, Data: []byte("y")}, "its parent /lib is a symlink"},
		{"relative", Entry{Path: "etc/x", Kind: KindFile}, "not absolute"},
		{"another link target", Entry{Path: "/lib", Kind: KindSymlink, Target: "/usr/lib"}, "added as"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tr.Add(tc.e)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Add: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestComparePathsParentsFirst(t *testing.T) {
	tr := NewTree()
	for _, p := range []string{"/a-b", "/a/b", "/a/b/c", "/a.b", "/a"} {
		if err := tr.Add(Entry{Path: p + "/f", Kind: KindFile, Data: nil}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, e := range tr.Entries() {
		if e.Path != "/" && !seen[filepath.Dir(e.Path)] {
			t.Errorf("%s comes before its parent", e.Path)
		}
		seen[e.Path] = true
	}
}

// sampleTree is a small tree touching every kind and mode the writers must carry.
func sampleTree(t *testing.T) *Tree {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("from the host\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tr := NewTree()
	for _, e := range []Entry{
		{Path: "/usr/bin/prog", Kind: KindFile, Mode: 0o755, Source: hostSource(t, src)},
		{Path: "/usr/bin/suid", Kind: KindFile, Mode: 0o755 | fs.ModeSetuid, Data: []byte("s")},
		{Path: "/bin", Kind: KindSymlink, Target: "usr/bin"},
		{Path: "/tmp", Kind: KindDir, Mode: 0o777 | fs.ModeSticky},
		{Path: "/etc/hosts", Kind: KindFile, Mode: 0o644, Data: []byte("127.0.0.1 localhost\n")},
		{Path: "/ro", Kind: KindDir, Mode: 0o555},
		{Path: "/ro/file", Kind: KindFile, Mode: 0o444, Data: []byte("r")},
		{Path: "/" + strings.Repeat("long/", 30) + "name", Kind: KindFile, Mode: 0o600, Data: []byte("deep")},
	} {
		if err := tr.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func TestWriteTar(t *testing.T) {
	tr := sampleTree(t)
	mtime := time.Unix(1700000000, 0)
	var a, b bytes.Buffer
	if err := WriteTar(context.Background(), tr, &a, mtime); err != nil {
		t.Fatal(err)
	}
	if err := WriteTar(context.Background(), tr, &b, mtime); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two writes of the same tree differ")
	}
	type rec struct {
		Name, Link string
		Type       byte
		Mode       int64
		Uid, Gid   int
		Uname      string
		Mtime      int64
		Body       string
	}
	var got []rec
	tr2 := tar.NewReader(&a)
	for {
		h, err := tr2.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr2)
		got = append(got, rec{h.Name, h.Linkname, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Uname + h.Gname, h.ModTime.Unix(), string(body)})
	}
	long := strings.Repeat("long/", 30)
	want := []rec{
		{"bin", "usr/bin", tar.TypeSymlink, 0o777, 0, 0, "", 1700000000, ""},
		{"etc/", "", tar.TypeDir, 0o755, 0, 0, "", 1700000000, ""},
		{"etc/hosts", "", tar.TypeReg, 0o644, 0, 0, "", 1700000000, "127.0.0.1 localhost\n"},
	}
	if diff := cmp.Diff(want, got[:3]); diff != "" {
		t.Errorf("first records (-want +got):\n%s", diff)
	}
	byName := map[string]rec{}
	for _, r := range got {
		byName[r.Name] = r
	}
	for name, mode := range map[string]int64{"tmp/": 0o1777, "usr/bin/suid": 0o4755, "ro/": 0o555, "ro/file": 0o444, long + "name": 0o600} {
		if r, ok := byName[name]; !ok || r.Mode != mode {
			t.Errorf("%s: mode %o (present %v), want %o", name, r.Mode, ok, mode)
		}
	}
	if byName["usr/bin/prog"].Body != "from the host\n" {
		t.Errorf("usr/bin/prog body %q", byName["usr/bin/prog"].Body)
	}
	for _, r := range got {
		if strings.HasPrefix(r.Name, "/") || strings.Contains(r.Name, "..") {
			t.Errorf("%q names a path outside the root", r.Name)
		}
	}
}

func TestWriteTarRefusesAChangedFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "grows")
	tr := NewTree()
	if err := tr.Add(Entry{Path: "/f", Kind: KindFile, Mode: 0o644, Source: changedSource(t, src, "abc", "abcdefghij")}); err != nil {
		t.Fatal(err)
	}
	err := WriteTar(context.Background(), tr, io.Discard, time.Unix(0, 0))
	if err == nil || !strings.Contains(err.Error(), "no longer the file that was planned") {
		t.Errorf("WriteTar: %v, want a changed-file error", err)
	}
}

func TestWriteDir(t *testing.T) {
	tr := sampleTree(t)
	dest := filepath.Join(t.TempDir(), "rootfs")
	mtime := time.Unix(1700000000, 0)
	if err := WriteDir(context.Background(), tr, dest, mtime, false); err != nil {
		t.Fatal(err)
	}
	check := func(p string, mode fs.FileMode, body string) {
		t.Helper()
		st, err := os.Lstat(filepath.Join(dest, p))
		if err != nil {
			t.Error(err)
			return
		}
		if st.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", p, st.Mode(), mode)
		}
		if !st.ModTime().Equal(mtime) {
			t.Errorf("%s: mtime %v, want %v", p, st.ModTime(), mtime)
		}
		if body != "" {
			if b, _ := os.ReadFile(filepath.Join(dest, p)); string(b) != body {
				t.Errorf("%s: %q, want %q", p, b, body)
			}
		}
	}
	check("tmp", fs.ModeDir|fs.ModeSticky|0o777, "")
	check("usr/bin/suid", fs.ModeSetuid|0o755, "s")
	check("usr/bin/prog", 0o755, "from the host\n")
	check("ro", fs.ModeDir|0o555, "")
	check("ro/file", 0o444, "r")
	if target, err := os.Readlink(filepath.Join(dest, "bin")); err != nil || target != "usr/bin" {
		t.Errorf("bin -> %q, %v", target, err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "bin", "prog")); err != nil || string(b) != "from the host\n" {
		t.Errorf("bin/prog through the link: %q, %v", b, err)
	}
}

func TestWriteDirSafety(t *testing.T) {
	tr := sampleTree(t)
	parent := t.TempDir()
	dest := filepath.Join(parent, "out")
	if err := os.MkdirAll(filepath.Join(dest, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dest, "keep", "me"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteDir(context.Background(), tr, dest, time.Unix(0, 0), false)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("WriteDir over a non-empty dir: %v, want ErrExists", err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "keep", "me")); err != nil || string(b) != "mine" {
		t.Fatalf("the existing output was touched: %q, %v", b, err)
	}
	if err := WriteDir(context.Background(), tr, dest, time.Unix(0, 0), true); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dest, "keep")); !os.IsNotExist(err) {
		t.Errorf("--force left the old content: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dest, "etc", "hosts")); err != nil {
		t.Errorf("--force did not write the new tree: %v", err)
	}
	ents, _ := os.ReadDir(parent)
	if len(ents) != 1 {
		t.Errorf("leftovers next to the output: %v", ents)
	}

	// A failure half way leaves nothing behind.
	bad := NewTree()
	if err := bad.Add(Entry{Path: "/a", Kind: KindFile, Mode: 0o644, Source: goneSource(t, parent, "vanished")}); err != nil {
		t.Fatal(err)
	}
	if err := WriteDir(context.Background(), bad, filepath.Join(parent, "out2"), time.Unix(0, 0), false); err == nil {
		t.Fatal("WriteDir with a missing source succeeded")
	}
	ents, _ = os.ReadDir(parent)
	if len(ents) != 1 {
		t.Errorf("a failed write left %v", ents)
	}
	// An unwritable destination is a clear error.
	if err := WriteDir(context.Background(), tr, "/proc/nope/out", time.Unix(0, 0), false); err == nil || !strings.Contains(err.Error(), "/proc/nope/out") {
		t.Errorf("WriteDir into /proc/nope: %v", err)
	}
}

func TestParseDest(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Dest
		err  string
	}{
		{in: "dir:/out", want: Dest{Transport: "dir", Path: "/out"}},
		{in: "tar:rootfs.tar", want: Dest{Transport: "tar", Path: "rootfs.tar"}},
		{in: "cpio:initrd", want: Dest{Transport: "cpio", Path: "initrd"}},
		{in: "oci:img", want: Dest{Transport: "oci", Path: "img"}},
		{in: "oci:img:v1", want: Dest{Transport: "oci", Path: "img", Ref: "v1"}},
		{in: "docker-archive:a.tar:repo/x:1", want: Dest{Transport: "docker-archive", Path: "a.tar", Ref: "repo/x:1"}},
		{in: "docker://localhost:5000/x:1", want: Dest{Transport: "docker", Ref: "localhost:5000/x:1"}},
		{in: "foo:bar", err: "unknown transport"},
		{in: "justapath", err: "no transport"},
		{in: "dir:", err: "no path"},
		{in: "docker://", err: "no image reference"},
	} {
		got, err := ParseDest(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseDest(%q): %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDest(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}
