package elfdeps

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHostileRootsEnd: a root whose interpreter, ld.so.conf or musl path file is a FIFO, whose ld.so.conf
// fans out through includes, or whose ld.so.cache is an 8 GB sparse file is resolved within 5 s, with an
// error naming the file where there is one (issue 9 #5, #6). Each runs over a real directory (os.DirFS,
// as deps reads a directory root).
func TestHostileRootsEnd(t *testing.T) {
	fifo := func(t *testing.T, dir, p string) {
		t.Helper()
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(full, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write := func(t *testing.T, dir, p, content string) {
		t.Helper()
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		root    synthRoot
		setup   func(t *testing.T, dir string)
		wantErr string // in the error or a problem; "" for none
	}{
		{name: "interpreter is a FIFO", root: synthRoot{synthProg: synthProgram()},
			setup: func(t *testing.T, dir string) { fifo(t, dir, synthRTLDPath) }, wantErr: "not a regular file"},
		{name: "a needed library is a FIFO", root: synthRoot{synthRTLDPath: synthRTLD(), synthProg: synthProgram("libf.so.1")},
			setup: func(t *testing.T, dir string) { fifo(t, dir, "/lib/x86_64-linux-gnu/libf.so.1") }, wantErr: "not a regular file"},
		{name: "ld.so.conf is a FIFO", root: synthRoot{synthRTLDPath: synthRTLD(), synthProg: synthProgram("libz.so.1"), "/usr/lib/libz.so.1": synthLib()},
			setup: func(t *testing.T, dir string) { fifo(t, dir, "/etc/ld.so.conf") }},
		{name: "musl's path file is a FIFO", root: synthRoot{synthMuslPath: synthOpts{Soname: "libc.so"}, synthProg: synthMuslExe(synthOpts{Needed: []string{"libz.so.1"}}), "/usr/lib/libz.so.1": synthLib()},
			// musl takes an unreadable path file (not ENOENT) as an empty path.
			setup: func(t *testing.T, dir string) { fifo(t, dir, "/etc/ld-musl-x86_64.path") }, wantErr: "libz.so.1 not found"},
		{name: "ld.so.conf including itself three times, 16 deep", root: synthRoot{synthRTLDPath: synthRTLD(), synthProg: synthProgram("libz.so.1"), "/opt/z/libz.so.1": synthLib()},
			setup: func(t *testing.T, dir string) {
				write(t, dir, "/etc/ld.so.conf", "/opt/z\ninclude /etc/ld.so.conf\ninclude /etc/ld.so.conf\ninclude /etc/ld.so.conf\n")
			}},
		{name: "200 files including each other", root: synthRoot{synthRTLDPath: synthRTLD(), synthProg: synthProgram("libz.so.1"), "/opt/z/libz.so.1": synthLib()},
			setup: func(t *testing.T, dir string) {
				write(t, dir, "/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n")
				for i := range 200 {
					write(t, dir, fmt.Sprintf("/etc/ld.so.conf.d/%03d.conf", i), "/opt/z\ninclude /etc/ld.so.conf.d/*.conf\n")
				}
			}},
		{name: "an 8 GB sparse ld.so.cache", root: synthRoot{synthRTLDPath: synthRTLD(), synthProg: synthProgram("libz.so.1"), "/usr/lib/libz.so.1": synthLib()},
			setup: func(t *testing.T, dir string) {
				write(t, dir, "/etc/ld.so.cache", "")
				if err := os.Truncate(filepath.Join(dir, "etc/ld.so.cache"), 8<<30); err != nil {
					t.Fatal(err)
				}
			}, wantErr: "ld.so.cache: too large: 8589934592 bytes, more than 64 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.root.writeDir(t, dir)
			tc.setup(t, dir)
			r, err := NewDir(dir, WithCPU(synthCPU))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				res, err := r.Resolve(synthProg)
				if err == nil {
					err = res.Err()
				}
				done <- err
			}()
			select {
			case err := <-done:
				switch {
				case tc.wantErr == "" && err != nil:
					t.Errorf("Resolve: %v", err)
				case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
					t.Errorf("Resolve: %v, want an error containing %q", err, tc.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Resolve did not return within 5 s")
			}
		})
	}
}
