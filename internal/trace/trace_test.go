package trace

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	ptraceOnce sync.Once
	ptraceErr  error
)

// requirePtrace skips the test where this process may not ptrace a child.
func requirePtrace(t *testing.T) {
	t.Helper()
	ptraceOnce.Do(func() {
		_, _, ptraceErr = Run(context.Background(), []string{"/bin/true"}, Options{Timeout: 30 * time.Second})
	})
	switch {
	case errors.Is(ptraceErr, ErrPtraceUnavailable):
		t.Skipf("ptrace is not permitted in this environment (seccomp or Yama): %v", ptraceErr)
	case errors.Is(ptraceErr, errors.ErrUnsupported):
		t.Skipf("tracing is implemented for linux/amd64 only: %v", ptraceErr)
	case ptraceErr != nil:
		t.Fatalf("Run(/bin/true): %v", ptraceErr)
	}
}

// traceOK runs argv and fails the test on an error.
func traceOK(t *testing.T, argv []string, opts Options) ([]Access, int) {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = time.Minute
	}
	acc, code, err := Run(t.Context(), argv, opts)
	if err != nil {
		t.Fatalf("Run(%q): %v", argv, err)
	}
	return acc, code
}

func find(acc []Access, path, op string) (Access, bool) {
	for _, a := range acc {
		if a.Path == path && a.Op == op {
			return a, true
		}
	}
	return Access{}, false
}

func mustFind(t *testing.T, acc []Access, path, op string) Access {
	t.Helper()
	a, ok := find(acc, path, op)
	if !ok {
		t.Fatalf("no %s of %s in %v", op, path, acc)
	}
	return a
}

func TestRunCat(t *testing.T) {
	requirePtrace(t)
	want, err := os.ReadFile("/etc/hostname")
	if err != nil {
		t.Skipf("this host has no /etc/hostname to read: %v", err)
	}
	for _, tc := range []struct {
		name string
		cfg  config
	}{
		{"syscall-info", config{}},
		{"registers", config{noSyscallInfo: true}}, // the pre-5.3 path
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			acc, code, err := run(t.Context(), []string{"/bin/cat", "/etc/hostname"},
				Options{Stdout: &out, Timeout: time.Minute}, tc.cfg)
			if err != nil || code != 0 {
				t.Fatalf("Run = code %d, %v; want 0, nil", code, err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("stdout = %q, want %q", out.Bytes(), want)
			}
			if acc[0].Path != "/bin/cat" || acc[0].Op != OpExec {
				t.Errorf("first access = %+v, want the exec of /bin/cat", acc[0])
			}
			pid := acc[0].PID
			host := mustFind(t, acc, "/etc/hostname", OpOpen)
			if host.PID != pid || host.Comm != "/bin/cat" {
				t.Errorf("open of /etc/hostname = %+v, want PID %d, Comm /bin/cat", host, pid)
			}
			libc := false
			for _, a := range acc {
				libc = libc || a.Op == OpOpen && filepath.Base(a.Path) == "libc.so.6"
				if pseudoFS(a.Path) || !filepath.IsAbs(a.Path) {
					t.Errorf("recorded %+v", a)
				}
			}
			if !libc {
				t.Errorf("no open of libc.so.6 (by ld.so) in %v", acc)
			}
			if real, err := filepath.EvalSymlinks("/bin/cat"); err == nil && real != "/bin/cat" {
				mustFind(t, acc, real, OpExe)
			}
		})
	}
}

func TestRunForkingShell(t *testing.T) {
	requirePtrace(t)
	for _, tc := range []struct {
		name string
		cfg  config
	}{
		{"syscall-info", config{}},
		{"registers", config{noSyscallInfo: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc, code, err := run(t.Context(), []string{"/bin/sh", "-c", "cat /etc/os-release >/dev/null; /bin/true"},
				Options{Timeout: time.Minute}, tc.cfg)
			if err != nil || code != 0 {
				t.Fatalf("Run = code %d, %v; want 0, nil", code, err)
			}
			osr := mustFind(t, acc, "/etc/os-release", OpOpen)
			if osr.PID == acc[0].PID || filepath.Base(osr.Comm) != "cat" {
				t.Errorf("open of /etc/os-release = %+v, want it from the cat child, not the shell %d", osr, acc[0].PID)
			}
			if tr := mustFind(t, acc, "/bin/true", OpExec); tr.Comm != "/bin/true" || tr.PID == acc[0].PID {
				t.Errorf("exec of /bin/true = %+v", tr)
			}
			if _, ok := find(acc, "/dev/null", OpOpen); ok {
				t.Errorf("/dev/null recorded: %v", acc)
			}
		})
	}
}

func TestRunRelativeAfterCd(t *testing.T) {
	requirePtrace(t)
	acc, code := traceOK(t, []string{"/bin/sh", "-c", "cd /etc && cat hostname >/dev/null"}, Options{Dir: "/"})
	if code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	mustFind(t, acc, "/etc", OpChdir)
	mustFind(t, acc, "/etc/hostname", OpOpen)
}

func TestRunFailedOpen(t *testing.T) {
	requirePtrace(t)
	acc, code := traceOK(t, []string{"/bin/cat", "/nonexistent"}, Options{})
	if code == 0 {
		t.Errorf("exit code = 0, want cat's failure")
	}
	for _, a := range acc {
		if a.Path == "/nonexistent" {
			t.Errorf("failed open recorded: %+v", a)
		}
	}
}

func TestRunStatAndReadlink(t *testing.T) {
	requirePtrace(t)
	if _, err := os.Readlink("/bin/sh"); err != nil {
		t.Skipf("/bin/sh is not a symlink here: %v", err)
	}
	// Stdout nil: readlink writes to /dev/null and must succeed.
	acc, code := traceOK(t, []string{"/bin/sh", "-c", "test -e /etc/hostname && readlink /bin/sh"}, Options{})
	if code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	mustFind(t, acc, "/etc/hostname", OpStat)
	mustFind(t, acc, "/bin/sh", OpReadlink)
}

const threadSource = `// Build with: gcc -pthread -o threadopen threadopen.c
// Usage: threadopen FILE [PROGRAM [ARGS...]]: a second thread opens FILE,
// prints its thread id and, given a PROGRAM, execs it from that thread.
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static char **args;

static void *worker(void *unused) {
	int fd = open(args[1], O_RDONLY);
	if (fd < 0) return args;
	close(fd);
	printf("%ld\n", (long)syscall(SYS_gettid));
	fflush(stdout);
	if (args[2] != NULL) execv(args[2], &args[2]);
	return args[2];
}

int main(int argc, char **argv) {
	pthread_t th;
	void *ret;
	args = argv;
	if (argc < 2 || pthread_create(&th, NULL, worker, NULL) != 0) return 2;
	pthread_join(th, &ret);
	return ret != NULL;
}
`

func TestRunThread(t *testing.T) {
	requirePtrace(t)
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("no gcc to build the threaded program: %v", err)
	}
	dir := t.TempDir()
	src, bin, data := filepath.Join(dir, "threadopen.c"), filepath.Join(dir, "threadopen"), filepath.Join(dir, "data")
	for p, s := range map[string]string{src: threadSource, data: "x"} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(gcc, "-pthread", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name string
		argv []string
		cfg  config
	}{
		{"open", []string{bin, data}, config{}},
		// The exec'ing thread takes over the leader's pid.
		{"open and exec", []string{bin, data, "/bin/true"}, config{}},
		{"open and exec, registers", []string{bin, data, "/bin/true"}, config{noSyscallInfo: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			acc, code, err := run(t.Context(), tc.argv, Options{Stdout: &out, Timeout: time.Minute}, tc.cfg)
			if err != nil || code != 0 {
				t.Fatalf("Run = code %d, %v; want 0, nil", code, err)
			}
			tid, err := strconv.Atoi(strings.TrimSpace(out.String()))
			if err != nil {
				t.Fatalf("thread id output %q: %v", out.String(), err)
			}
			pid := acc[0].PID
			a := mustFind(t, acc, data, OpOpen)
			if a.PID != tid || tid == pid || a.Comm != bin {
				t.Errorf("open of %s = %+v, want PID %d (the thread, not %d), Comm %s", data, a, tid, pid, bin)
			}
			if len(tc.argv) > 2 {
				if e := mustFind(t, acc, "/bin/true", OpExec); e.PID != pid || e.Comm != "/bin/true" {
					t.Errorf("exec from the thread = %+v, want PID %d (the leader's), Comm /bin/true", e, pid)
				}
			}
		})
	}
}

// realPython returns the python3 binary itself (not a pyenv shim).
func realPython(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skipf("no python3: %v", err)
	}
	out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Skipf("python3 does not run: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestRunDlopen(t *testing.T) {
	requirePtrace(t)
	py := realPython(t)
	argv := []string{py, "-c", `import ctypes; ctypes.CDLL("libz.so.1")`}
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Skipf("python3 cannot load libz.so.1 on this host, even untraced: %v\n%s", err, out)
	}
	acc, code := traceOK(t, argv, Options{})
	if code != 0 {
		t.Fatalf("exit code = %d under the tracer, 0 without", code)
	}
	for _, a := range acc {
		if a.Op == OpOpen && filepath.Base(a.Path) == "libz.so.1" {
			return
		}
	}
	t.Errorf("no open of libz.so.1 in %v", acc)
}

func TestRunScriptRecordsInterpreter(t *testing.T) {
	requirePtrace(t)
	dash, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skip(err)
	}
	script := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	acc, code := traceOK(t, []string{script}, Options{})
	if code != 3 {
		t.Errorf("exit code = %d, want 3", code)
	}
	mustFind(t, acc, script, OpExec)
	if exe := mustFind(t, acc, dash, OpExe); exe.Comm != script {
		t.Errorf("exe = %+v, want Comm %s", exe, script)
	}
}

func TestRunRoot(t *testing.T) {
	requirePtrace(t)
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	root := t.TempDir()
	for dst, src := range map[string]string{
		"bin/dash":                       "/bin/dash",
		"lib/x86_64-linux-gnu/libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6",
		"lib64/ld-linux-x86-64.so.2":     "/lib64/ld-linux-x86-64.so.2",
		"etc/x":                          "",
		"etc/y":                          "",
	} {
		b := []byte("line\n")
		if src != "" {
			var err error
			if b, err = os.ReadFile(src); err != nil {
				t.Skipf("this host has no %s to build a root from: %v", src, err)
			}
		}
		p := filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	acc, code := traceOK(t, []string{"/bin/dash", "-c", "read a < /etc/x; cd /etc && read b < y"}, Options{Root: root})
	if code != 0 {
		t.Fatalf("exit code = %d, want 0; accesses %v", code, acc)
	}
	mustFind(t, acc, "/bin/dash", OpExec)
	mustFind(t, acc, "/lib/x86_64-linux-gnu/libc.so.6", OpOpen)
	mustFind(t, acc, "/etc/x", OpOpen)
	mustFind(t, acc, "/etc/y", OpOpen) // relative: /proc/PID/cwd minus the root
	mustFind(t, acc, "/etc", OpChdir)
	for _, a := range acc {
		if strings.HasPrefix(a.Path, root) || strings.HasPrefix(a.Comm, root) {
			t.Errorf("host path recorded: %+v", a)
		}
	}
}

func TestRunStartErrors(t *testing.T) {
	requirePtrace(t)
	for _, tc := range []struct {
		name string
		argv []string
		want error
	}{
		{"not in PATH", []string{"scratchpack-no-such-command"}, exec.ErrNotFound},
		{"no such file", []string{"/scratchpack/no/such/file"}, syscall.ENOENT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Run(t.Context(), tc.argv, Options{})
			if !errors.Is(err, tc.want) {
				t.Errorf("Run(%q) error = %v, want %v", tc.argv, err, tc.want)
			}
		})
	}
	if _, _, err := Run(t.Context(), nil, Options{}); err == nil {
		t.Errorf("Run(nil) succeeded")
	}
}
