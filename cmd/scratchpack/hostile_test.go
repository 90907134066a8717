package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/scratchpack/scratchpack/internal/elftest"
)

// TestHostileArguments: special files, malformed users and bad references are refused before any work,
// with a message naming them and nothing written (issue 9: #13, #14, #17).
func TestHostileArguments(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a device given to --add", []string{"/bin/true", "--add", "/dev/zero:/zero"}, 1, "/dev/zero"},
		{"a FIFO given to --add", []string{"/bin/true", "--add", "FIFO:/fifo"}, 1, "not a regular file"},
		{"a newline in --user", []string{"/bin/true", "--user", "app\nevil"}, 2, "not a valid user"},
		{"three parts in --user", []string{"/bin/true", "--user", "a:b:c"}, 2, "want NAME, UID, NAME:GROUP or UID:GID"},
		{"a bad registry reference", []string{"/bin/true", "-o", "docker://Bad Ref!!"}, 2, "Bad Ref!!"},
		{"a bad archive reference", []string{"/bin/true", "-o", "docker-archive:x.tar:Bad Ref!!"}, 2, "Bad Ref!!"},
		{"a port that does not exist", []string{"/bin/true", "-o", "docker://localhost:99999/x:1"}, 2, "99999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "FIFO", filepath.Join(dir, "fifo"))
			}
			if err := mkfifo(filepath.Join(dir, "fifo")); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(args, " "), " -o ") {
				args = append(args, "-o", "dir:"+filepath.Join(dir, "out"))
			}
			code, stdout, stderr := scratchpack(t, append([]string{"build", "--certs", "never"}, args...)...)
			if code != tc.code || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d naming %q", code, stdout, stderr, tc.code, tc.want)
			}
			if _, err := os.Lstat(filepath.Join(dir, "out")); err == nil {
				t.Error("a refused build wrote its output")
			}
		})
	}
}

// TestControlBytesQuoted: a DT_NEEDED name holding terminal escape sequences is printed quoted, in the tree,
// the list and the error (issue 9 #18).
func TestControlBytesQuoted(t *testing.T) {
	root := t.TempDir()
	write := func(p string, data []byte) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	evil := "lib\x1b]0;pwned\x07\x1b[2J.so"
	write("lib64/ld-linux-x86-64.so.2", elftest.ELF(elftest.Opts{Soname: "ld-linux-x86-64.so.2"}))
	write("bin/prog", elftest.ELF(elftest.Opts{Interp: "/lib64/ld-linux-x86-64.so.2", Needed: []string{evil}}))
	for _, format := range []string{"tree", "list"} {
		code, stdout, stderr := scratchpack(t, "deps", "--root", root, "--format", format, "/bin/prog")
		if code != 1 {
			t.Errorf("%s: exit %d, want 1 (the library is missing)", format, code)
		}
		for name, out := range map[string]string{"stdout": stdout, "stderr": stderr} {
			if strings.ContainsAny(out, "\x1b\x07") {
				t.Errorf("%s: %s holds raw control bytes: %q", format, name, out)
			}
		}
		if !strings.Contains(stderr, `lib\x1b]0;pwned\x07\x1b[2J.so`) {
			t.Errorf("%s: stderr %q does not name the library with its bytes quoted", format, stderr)
		}
	}
}

func mkfifo(p string) error { return syscall.Mkfifo(p, 0o644) }
