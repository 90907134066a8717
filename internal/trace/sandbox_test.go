//go:build linux

package trace

// Tests of Options.Sandbox. They need root and user namespaces; they run on
// roots made of the host's dash or a static Go program built from
// testdata/sandboxprog.

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testSandbox maps IDs far from any host user's.
var testSandbox = Sandbox{HostID: 1 << 30, Size: 65536}

var (
	userNSOnce sync.Once
	userNSErr  error
)

// requireSandbox skips the test where a sandbox cannot be made: not root,
// or user namespaces refused.
func requireSandbox(t *testing.T) {
	t.Helper()
	requirePtrace(t)
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root (to map host IDs and trace across user namespaces)")
	}
	userNSOnce.Do(func() {
		ids := []syscall.SysProcIDMap{{ContainerID: 0, HostID: testSandbox.HostID, Size: testSandbox.Size}}
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET,
			UidMappings: ids, GidMappings: ids,
		}
		userNSErr = cmd.Run()
	})
	if userNSErr != nil {
		t.Skipf("user namespaces are not permitted here (sysctl user.max_user_namespaces, seccomp or AppArmor): %v", userNSErr)
	}
}

// libDirs are where copyELF looks for DT_NEEDED libraries, as ld.so would
// without a cache on Debian.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// copyELF copies the host's program at src to dst inside root, with its
// PT_INTERP and the libraries it needs, each at the path where the host's
// ld.so finds it.
func copyELF(t *testing.T, root, src, dst string) {
	t.Helper()
	copyFile(t, src, filepath.Join(root, dst), 0o755)
	todo := []string{src}
	seen := map[string]bool{}
	for len(todo) > 0 {
		p := todo[0]
		todo = todo[1:]
		f, err := elf.Open(p)
		if err != nil {
			t.Skipf("reading %s to build a root: %v", p, err)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				b, err := io.ReadAll(prog.Open())
				if err != nil {
					t.Fatal(err)
				}
				interp := string(bytes.TrimRight(b, "\x00"))
				if !seen[interp] {
					seen[interp] = true
					copyFile(t, interp, filepath.Join(root, interp), 0o755)
				}
			}
		}
		needed, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, lib := range needed {
			if seen[lib] {
				continue
			}
			seen[lib] = true
			found := false
			for _, dir := range libDirs {
				host := filepath.Join(dir, lib)
				if _, err := os.Stat(host); err == nil {
					copyFile(t, host, filepath.Join(root, host), 0o755)
					todo, found = append(todo, host), true
					break
				}
			}
			if !found {
				t.Skipf("no %s (needed by %s) in %v to build a root", lib, p, libDirs)
			}
		}
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Skipf("this host has no %s to build a root from: %v", src, err)
	}
	writeFile(t, dst, string(b), mode)
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// shiftOwners gives every file of root to the sandbox's root (host ID
// HostID), as an image unpacked for the sandbox would be.
func shiftOwners(t *testing.T, root string) {
	t.Helper()
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, testSandbox.HostID, testSandbox.HostID)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// shellRoot makes a root with dash as /bin/dash, /bin/sh linking to it, and
// /etc/data.
func shellRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	copyELF(t, root, "/bin/dash", "/bin/dash")
	if err := os.Symlink("dash", filepath.Join(root, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "etc/data"), "data-line\n", 0o644)
	shiftOwners(t, root)
	return root
}

var (
	progOnce sync.Once
	progPath string
	progErr  error
)

// sandboxProg builds testdata/sandboxprog (static) once per test binary.
func sandboxProg(t *testing.T) string {
	t.Helper()
	progOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			progErr = err
			return
		}
		dir, err := os.MkdirTemp("", "sandboxprog")
		if err != nil {
			progErr = err
			return
		}
		progPath = filepath.Join(dir, "sandboxprog")
		cmd := exec.Command(goTool, "build", "-o", progPath, ".")
		cmd.Dir = "testdata/sandboxprog"
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			progErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if errors.Is(progErr, exec.ErrNotFound) {
		t.Skipf("no go command to build testdata/sandboxprog: %v", progErr)
	}
	if progErr != nil {
		t.Fatal(progErr)
	}
	return progPath
}

// TestMain removes what sandboxProg built.
func TestMain(m *testing.M) {
	code := m.Run()
	if progPath != "" {
		os.RemoveAll(filepath.Dir(progPath))
	}
	os.Exit(code)
}

// serverRoot makes a root holding sandboxprog as /srv/prog and /srv/answer.
func serverRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	copyFile(t, sandboxProg(t), filepath.Join(root, "srv/prog"), 0o755)
	writeFile(t, filepath.Join(root, "srv/answer"), "42\n", 0o644)
	shiftOwners(t, root)
	return root
}

// hostNS reads the namespace links of pid (self for this process).
func hostNS(t *testing.T, pid string, kinds ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range kinds {
		l, err := os.Readlink("/proc/" + pid + "/ns/" + k)
		if err != nil {
			t.Errorf("reading the %s namespace of %s: %v", k, pid, err)
		}
		out[k] = l
	}
	return out
}

// statusField reads a field of /proc/PID/status.
func statusField(pid int, name string) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

// sandboxScript prints what the shell sees of its sandbox, one "key=value"
// a line, then opens /etc/data by a relative path.
const sandboxScript = `echo pid=$$
while read k v rest; do case $k in Uid:|Gid:) echo "$k$v $rest";; esac; done </proc/self/status
while read l; do case $l in *:*) echo "if=${l%%:*}";; esac; done </proc/net/dev
read h </proc/sys/kernel/hostname; echo "host=$h"
for p in /proc/[0-9]*; do echo "proc=${p#/proc/}"; done
while read id parent dev r mp rest; do echo "mount=$mp"; done </proc/self/mountinfo
test -c /dev/null && echo x >/dev/null && echo dev=null
test -e /tmp && echo host-tmp=visible
cd /etc && read d <data && echo "data=$d"
export -p | while read e kv; do echo "var=${kv%%=*}"; done
`

func TestSandbox(t *testing.T) {
	requireSandbox(t)
	root := shellRoot(t)
	var out, errOut bytes.Buffer
	var probed int
	var probeNS map[string]string
	var probeUid, probeGid string
	kinds := []string{"net", "pid", "mnt", "user", "uts", "ipc"}
	acc, code, err := Run(t.Context(), []string{"/bin/sh", "-c", sandboxScript}, Options{
		Root: root, Sandbox: &testSandbox, Credential: &syscall.Credential{Uid: 1000, Gid: 1001},
		Env:    []string{"PATH=/bin", "X=1", sandboxEnv + "=not for the command"},
		Stdout: &out, Stderr: &errOut, Timeout: time.Minute,
		Probe: func(ctx context.Context, pid int) error {
			// The shell is PID 1: the SIGTERM that follows is dropped, and
			// it runs to its end.
			probed = pid
			probeNS = hostNS(t, strconv.Itoa(pid), kinds...)
			probeUid, probeGid = statusField(pid, "Uid"), statusField(pid, "Gid")
			return nil
		},
	})
	if err != nil || code != 0 {
		t.Fatalf("Run = %d, %v; want 0, nil; stderr:\n%s", code, err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	got := map[string][]string{}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "=")
		if id, ids, ok := strings.Cut(l, ":"); ok && (id == "Uid" || id == "Gid") {
			k, v = id, strings.Join(strings.Fields(ids), " ")
		}
		got[k] = append(got[k], v)
	}
	wantMounts := []string{"/", "/dev", "/dev/full", "/dev/null", "/dev/random", "/dev/shm", "/dev/tty", "/dev/urandom", "/dev/zero", "/proc"}
	mounts := slices.Sorted(slices.Values(got["mount"]))
	vars := slices.DeleteFunc(got["var"], func(v string) bool { return v == "PWD" || v == "OLDPWD" })
	for _, c := range []struct {
		what      string
		got, want []string
	}{
		{"pid inside", got["pid"], []string{"1"}},
		{"uids inside", got["Uid"], []string{"1000 1000 1000 1000"}},
		{"gids inside", got["Gid"], []string{"1001 1001 1001 1001"}},
		{"network interfaces", got["if"], []string{"lo"}},
		{"host name", got["host"], []string{"scratchpack"}},
		{"processes in /proc", got["proc"], []string{"1"}},
		{"mount points", mounts, wantMounts},
		{"/dev/null", got["dev"], []string{"null"}},
		{"the host's /tmp", got["host-tmp"], nil},
		{"relative read", got["data"], []string{"data-line"}},
		{"exported variables but the shell's", vars, []string{"PATH", "X"}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s = %q, want %q\noutput:\n%s", c.what, c.got, c.want, out.String())
		}
	}

	// From the host: the probe's pid is the command, with shifted IDs and
	// namespaces of its own.
	if probed == 0 || probed != acc[0].PID {
		t.Errorf("probe got pid %d, want the command's %d", probed, acc[0].PID)
	}
	host := testSandbox.HostID
	if want := fmt.Sprintf("%d %d %d %d", host+1000, host+1000, host+1000, host+1000); probeUid != want {
		t.Errorf("host's view of the command's Uid = %q, want %q", probeUid, want)
	}
	if want := fmt.Sprintf("%d %d %d %d", host+1001, host+1001, host+1001, host+1001); probeGid != want {
		t.Errorf("host's view of the command's Gid = %q, want %q", probeGid, want)
	}
	self := hostNS(t, "self", kinds...)
	for _, k := range kinds {
		if probeNS[k] == "" || probeNS[k] == self[k] {
			t.Errorf("%s namespace of the command = %q, this process's = %q: want another", k, probeNS[k], self[k])
		}
	}

	// What was recorded: the command's files, by their paths in the root.
	if acc[0].Path != "/bin/sh" || acc[0].Op != OpExec || acc[0].Comm != "/bin/sh" {
		t.Errorf("first access = %+v, want the exec of /bin/sh", acc[0])
	}
	mustFind(t, acc, "/bin/dash", OpExe) // /proc/PID/exe, named in the sandbox's mount namespace
	mustFind(t, acc, "/etc", OpChdir)
	mustFind(t, acc, "/etc/data", OpOpen) // relative to /proc/PID/cwd
	mustFind(t, acc, "/lib/x86_64-linux-gnu/libc.so.6", OpOpen)
	for _, a := range acc {
		if _, err := os.Lstat(filepath.Join(root, a.Path)); err != nil || !filepath.IsAbs(a.Path) {
			t.Errorf("recorded %+v, which is no file of the root: %v", a, err)
		}
		if strings.Contains(a.Path, root) || strings.Contains(a.Comm, root) || strings.Contains(a.Comm, "exe") {
			t.Errorf("recorded a host path or the helper: %+v", a)
		}
	}
}

func TestSandboxStartErrors(t *testing.T) {
	requireSandbox(t)
	root := shellRoot(t)
	badProc := shellRoot(t)
	if err := os.Symlink("/etc", filepath.Join(badProc, "proc")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		argv []string
		opts Options
		want []string // in the error's text
		is   error
	}{
		{"no such directory", []string{"/bin/sh", "-c", "true"}, Options{Root: root, Dir: "/nonexistent"},
			[]string{"changing directory to /nonexistent", "in root " + root}, syscall.ENOENT},
		{"no such program", []string{"/bin/nonexistent"}, Options{Root: root},
			[]string{"executing /bin/nonexistent"}, syscall.ENOENT},
		{"directory not searchable by the user", []string{"/bin/sh", "-c", "true"},
			Options{Root: root, Dir: "/etc", Credential: &syscall.Credential{Uid: 1000, Gid: 1000}},
			[]string{"changing directory to /etc"}, syscall.EACCES},
		{"/proc is a symlink", []string{"/bin/sh", "-c", "true"}, Options{Root: badProc},
			[]string{"opening /proc in the root"}, syscall.ENOTDIR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.is == syscall.EACCES {
				if err := os.Chmod(filepath.Join(root, "etc"), 0o700); err != nil {
					t.Fatal(err)
				}
				defer os.Chmod(filepath.Join(root, "etc"), 0o755)
			}
			tc.opts.Sandbox, tc.opts.Timeout = &testSandbox, time.Minute
			_, _, err := Run(t.Context(), tc.argv, tc.opts)
			if err == nil {
				t.Fatal("Run succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Run error = %q, want it to say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "before it could be traced") {
				t.Errorf("Run error = %q: the helper's report is lost", err)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("Run error = %v, want it to wrap %v", err, tc.is)
			}
		})
	}
	// The host is untouched by the failed /proc.
	if _, err := os.Stat("/etc/self"); err == nil {
		t.Errorf("a proc was mounted on the host's /etc")
	}
}

func TestSandboxOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no root", Options{Sandbox: &testSandbox}, "needs Options.Root"},
		{"host root", Options{Root: "/tmp", Sandbox: &Sandbox{HostID: 0, Size: 65536}}, "not a range"},
		{"uid outside", Options{Root: "/tmp", Sandbox: &Sandbox{HostID: 100000, Size: 10},
			Credential: &syscall.Credential{Uid: 10}}, "credential ID 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Run(t.Context(), []string{"/bin/true"}, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run error = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestSandboxNoEscape: root of the sandbox may chroot, but the host's tree is
// not in its mount namespace to escape to. The same escape from a plain
// chroot (as Root without Sandbox gives) reaches the host's files.
func TestSandboxNoEscape(t *testing.T) {
	requireSandbox(t)
	marker, err := os.CreateTemp("", "scratchpack-host-marker")
	if err != nil {
		t.Fatal(err)
	}
	marker.Close()
	defer os.Remove(marker.Name())
	if err := os.Chmod(marker.Name(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		sandbox *Sandbox
		want    string
	}{
		{"plain chroot", nil, "visible"},
		{"sandbox", &testSandbox, "hidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			_, code, err := Run(t.Context(), []string{"/srv/prog", "escape", marker.Name()},
				Options{Root: serverRoot(t), Sandbox: tc.sandbox, Stdout: &out, Stderr: &errOut, Timeout: time.Minute})
			if err != nil || code != 0 {
				t.Fatalf("Run = %d, %v; want 0, nil; stderr:\n%s", code, err, errOut.String())
			}
			if got, _, _ := strings.Cut(strings.TrimSpace(out.String()), ":"); got != tc.want {
				t.Errorf("after the escape, the host's %s is %q, want %s", marker.Name(), out.String(), tc.want)
			}
		})
	}
}

// TestSandboxHelperRefusesHost: the helper, started by hand with its variable
// set but outside a sandbox, refuses to touch anything. (It runs in mount,
// UTS and network namespaces of its own all the same, in case it did not.)
func TestSandboxHelperRefusesHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the namespaces that contain this test's failure need root")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{sandboxEnv + `={"path":"/bin/true","argv":["true"],"dir":"/"}`}
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWNET}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != sandboxExitCode {
		t.Fatalf("helper outside a sandbox: %v, want exit code %d; stderr:\n%s", err, sandboxExitCode, stderr.String())
	}
	if !strings.Contains(stderr.String(), "set outside a sandbox") {
		t.Errorf("stderr = %q, want it to say that the helper is outside a sandbox", stderr.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the helper made %v in its working directory", entries)
	}
}
