package trace

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseStrace(t *testing.T) {
	for _, tc := range []struct {
		name string
		cwd  string
		log  string
		want []Access
	}{
		{
			name: "relative openat against cwd",
			cwd:  "/work",
			log:  `openat(AT_FDCWD, "x", O_RDONLY|O_CLOEXEC) = 3`,
			want: []Access{{Path: "/work/x", Op: OpOpen}},
		},
		{
			name: "relative path with unknown cwd is dropped",
			log:  `openat(AT_FDCWD, "x", O_RDONLY) = 3` + "\n" + `open("/abs/../y", O_RDONLY) = 4`,
			want: []Access{{Path: "/y", Op: OpOpen}},
		},
		{
			name: "failures are ignored",
			cwd:  "/",
			log: `openat(AT_FDCWD, "/etc/nope", O_RDONLY) = -1 ENOENT (No such file or directory)
access("/etc/ld.so.preload", R_OK) = -1 ENOENT (No such file or directory)
execve("/usr/local/bin/true", ["true"], 0x7ffd /* 3 vars */) = -1 ENOENT (No such file or directory)
chdir("/nope") = -1 ENOENT (No such file or directory)
openat(AT_FDCWD, "rel", O_RDONLY) = 3`,
			want: []Access{{Path: "/rel", Op: OpOpen}},
		},
		{
			name: "[pid N] prefixes",
			log: `execve("/bin/sh", ["sh"], 0x7ffc /* 1 var */) = 0
[pid   123] openat(AT_FDCWD, "/etc/passwd", O_RDONLY) = 3
[pid 45] stat("/etc/group", {st_mode=S_IFREG|0644, st_size=1, ...}) = 0`,
			want: []Access{
				{Path: "/bin/sh", Op: OpExec, Comm: "/bin/sh"},
				{Path: "/etc/passwd", Op: OpOpen, PID: 123},
				{Path: "/etc/group", Op: OpStat, PID: 45},
			},
		},
		{
			name: "-o prefixes, timestamps and durations",
			log: `123   openat(AT_FDCWD, "/a", O_RDONLY) = 3 <0.000010>
124 12:34:56 openat(AT_FDCWD, "/b", O_RDONLY) = 3
125 12:34:56.123456 openat(AT_FDCWD, "/c", O_RDONLY) = 3
1700000000.123456 openat(AT_FDCWD, "/d", O_RDONLY) = 3`,
			want: []Access{
				{Path: "/a", Op: OpOpen, PID: 123},
				{Path: "/b", Op: OpOpen, PID: 124},
				{Path: "/c", Op: OpOpen, PID: 125},
				{Path: "/d", Op: OpOpen},
			},
		},
		{
			name: "unfinished and resumed are joined",
			log: `[pid 7] openat(AT_FDCWD, "/etc/x", O_RDONLY <unfinished ...>
[pid 8] openat(AT_FDCWD, "/etc/y", O_RDONLY <unfinished ...>
[pid 7] <... openat resumed>) = 4
[pid 8] <... openat resumed>) = -1 EACCES (Permission denied)
[pid 9] openat(AT_FDCWD, "/etc/z", O_RDONLY <unfinished ...>
[pid 9] +++ killed by SIGKILL +++`,
			want: []Access{{Path: "/etc/x", Op: OpOpen, PID: 7}},
		},
		{
			name: "exec sets Comm and children inherit it",
			log: `10 execve("/bin/true", ["/bin/true"], 0x7ffc /* 0 vars */) = 0
10 openat(AT_FDCWD, "/lib/libc.so.6", O_RDONLY|O_CLOEXEC) = 3
10 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 11
11 openat(AT_FDCWD, "/etc/child", O_RDONLY) = 3`,
			want: []Access{
				{Path: "/bin/true", Op: OpExec, PID: 10, Comm: "/bin/true"},
				{Path: "/lib/libc.so.6", Op: OpOpen, PID: 10, Comm: "/bin/true"},
				{Path: "/etc/child", Op: OpOpen, PID: 11, Comm: "/bin/true"},
			},
		},
		{
			name: "chdir then a relative open, inherited by a vfork child logged first",
			cwd:  "/",
			log: `20 chdir("/etc") = 0
20 vfork( <unfinished ...>
21 openat(AT_FDCWD, "hostname", O_RDONLY) = 3
20 <... vfork resumed>) = 21
20 chdir("..") = 0
20 openat(AT_FDCWD, "hostname", O_RDONLY) = 3`,
			want: []Access{
				{Path: "/etc", Op: OpChdir, PID: 20},
				{Path: "/etc/hostname", Op: OpOpen, PID: 21},
				{Path: "/", Op: OpChdir, PID: 20},
				{Path: "/hostname", Op: OpOpen, PID: 20},
			},
		},
		{
			name: "quoted strings with escapes",
			log: `openat(AT_FDCWD, "\x2f\x65tc/a\"b\\c\tq\303\251,)", O_RDONLY) = 3
openat(AT_FDCWD, "/oct\101\60", O_RDONLY) = 3
openat(AT_FDCWD, "/truncated/by/strace"..., O_RDONLY) = 3`,
			want: []Access{
				{Path: "/etc/a\"b\\c\tqé,)", Op: OpOpen},
				{Path: "/octA0", Op: OpOpen},
			},
		},
		{
			name: "dirfds: from an earlier open, from -y, and fchdir",
			log: `30 openat(AT_FDCWD, "/usr/lib", O_RDONLY|O_DIRECTORY) = 5
30 openat(5, "libz.so.1", O_RDONLY) = 6
30 newfstatat(6, "", {st_mode=S_IFREG|0644, ...}, AT_EMPTY_PATH) = 0
30 openat(7</opt/dir>, "f", O_RDONLY) = 8</opt/dir/f>
30 openat(9, "unknown-dirfd", O_RDONLY) = 10
30 fchdir(5) = 0
30 readlinkat(AT_FDCWD, "lnk", "target", 4096) = 6
30 close(5) = 0
30 openat(5, "stale", O_RDONLY) = 11`,
			want: []Access{
				{Path: "/usr/lib", Op: OpOpen, PID: 30},
				{Path: "/usr/lib/libz.so.1", Op: OpOpen, PID: 30},
				{Path: "/opt/dir/f", Op: OpOpen, PID: 30},
				{Path: "/usr/lib/lnk", Op: OpReadlink, PID: 30},
			},
		},
		{
			name: "other file calls and pseudo filesystems",
			cwd:  "/w",
			log: `creat("new", 0644) = 3
openat2(AT_FDCWD, "/etc/o2", {flags=O_RDONLY, resolve=RESOLVE_NO_SYMLINKS}, 24) = 4
statx(AT_FDCWD, "/etc/sx", AT_STATX_SYNC_AS_STAT, STATX_ALL, {stx_mask=STATX_ALL, ...}) = 0
faccessat2(AT_FDCWD, "/etc/fa", X_OK, AT_EACCESS) = 0
readlink("/proc/self/exe", "/usr/bin/python3.11", 4096) = 19
openat(AT_FDCWD, "/dev/null", O_RDWR) = 5
openat(AT_FDCWD, "/sys/fs/cgroup/x", O_RDONLY) = 6
execveat(3, "", ["x"], 0x7ff /* 0 vars */, AT_EMPTY_PATH) = 0
openat(AT_FDCWD, "new", O_RDONLY) = 7`,
			want: []Access{
				{Path: "/w/new", Op: OpOpen},
				{Path: "/etc/o2", Op: OpOpen},
				{Path: "/etc/sx", Op: OpStat},
				{Path: "/etc/fa", Op: OpStat},
				{Path: "/w/new", Op: OpExec, Comm: "/w/new"},
			},
		},
		{
			name: "execve in a non-leader thread finishes under the leader's pid",
			log: `40 execve("/bin/a", ["a"], 0x1 /* 0 vars */) = 0
41 execve("/bin/b", ["b"], 0x1 /* 0 vars */ <unfinished ...>
40 +++ superseded by execve in pid 41 +++
40 <... execve resumed>) = 0
40 openat(AT_FDCWD, "/etc/after", O_RDONLY) = 3`,
			want: []Access{
				{Path: "/bin/a", Op: OpExec, PID: 40, Comm: "/bin/a"},
				{Path: "/bin/b", Op: OpExec, PID: 40, Comm: "/bin/b"},
				{Path: "/etc/after", Op: OpOpen, PID: 40, Comm: "/bin/b"},
			},
		},
		{
			name: "the same, as strace 6 logs it with -o",
			log: `25433 execve("/tmp/th", ["/tmp/th", "/bin/true"], 0x7ffe6f993f20 /* 35 vars */) = 0
25434 execve("/bin/true", ["/bin/true"], 0x7ffc813d6ad0 /* 35 vars */ <pid changed to 25433 ...>
25433 +++ superseded by execve in pid 25434 +++
25433 <... execve resumed>)             = 0`,
			want: []Access{
				{Path: "/tmp/th", Op: OpExec, PID: 25433, Comm: "/tmp/th"},
				{Path: "/bin/true", Op: OpExec, PID: 25433, Comm: "/bin/true"},
			},
		},
		{
			name: "the same, on stderr (the leader has no prefix)",
			log: `execve("/tmp/th", ["/tmp/th", "/bin/true"], 0x7ffe47598630 /* 35 vars */) = 0
[pid 25441] execve("/bin/true", ["/bin/true"], 0x7ffd82d57490 /* 35 vars */ <pid changed to 25440 ...>
+++ superseded by execve in pid 25441 +++
<... execve resumed>)                   = 0`,
			want: []Access{
				{Path: "/tmp/th", Op: OpExec, Comm: "/tmp/th"},
				{Path: "/bin/true", Op: OpExec, Comm: "/bin/true"},
			},
		},
		{
			name: "noise is skipped",
			log: `strace: Process 5 attached
--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=5} ---
+++ exited with 0 +++
hello from the program (not a syscall) = 3
exit_group(0) = ?
openat(AT_FDCWD, "/ok", O_RDONLY) = 3`,
			want: []Access{{Path: "/ok", Op: OpOpen}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStrace(strings.NewReader(tc.log), tc.cwd)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseStrace (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseStraceRelativeCwd(t *testing.T) {
	if _, err := ParseStrace(strings.NewReader(""), "rel"); err == nil {
		t.Error("ParseStrace with a relative cwd succeeded")
	}
}

// pathOps lists the (Path, Op) pairs of acc, sorted, without OpExe.
func pathOps(acc []Access) []string {
	var out []string
	for _, a := range acc {
		if a.Op != OpExe {
			out = append(out, a.Op+" "+a.Path)
		}
	}
	slices.Sort(out)
	return out
}

// TestParseStraceAgreesWithRun traces one command with strace and with Run.
func TestParseStraceAgreesWithRun(t *testing.T) {
	requirePtrace(t)
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skipf("strace is not installed (apt-get install strace): %v", err)
	}
	argv := []string{"/bin/sh", "-c", "cat /etc/hostname; cd /etc && cat os-release"}
	log := filepath.Join(t.TempDir(), "log")
	cmd := exec.Command(strace, append([]string{"-f", "-e", "trace=file,process", "-o", log}, argv...)...)
	cmd.Env, cmd.Dir = defaultEnv, "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("strace: %v\n%s", err, out)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parsed, err := ParseStrace(f, "/")
	if err != nil {
		t.Fatal(err)
	}
	traced, code := traceOK(t, argv, Options{Dir: "/", Timeout: time.Minute})
	if code != 0 {
		t.Fatalf("exit code = %d", code)
	}
	mustFind(t, parsed, "/etc/os-release", OpOpen)
	mustFind(t, parsed, "/etc/hostname", OpOpen)
	t.Logf("%d (path, op) pairs in both", len(pathOps(parsed)))
	if diff := cmp.Diff(pathOps(traced), pathOps(parsed)); diff != "" {
		t.Errorf("Run vs ParseStrace (-run +strace):\n%s", diff)
	}
}

func FuzzParseStrace(f *testing.F) {
	f.Add(`[pid 1] openat(AT_FDCWD, "a\x2f", O_RDONLY <unfinished ...>` + "\n" + `[pid 1] <... openat resumed>) = 3`)
	f.Add(`2 +++ superseded by execve in pid 3 +++`)
	f.Add(`execveat(3</x>, "", [], 0x0, AT_EMPTY_PATH) = 0`)
	f.Add(`1 12:00:00.1 clone3({flags=CLONE_VM}, 88) = 2` + "\n" + `2 chdir("\1") = 0`)
	f.Fuzz(func(t *testing.T, log string) {
		acc, err := ParseStrace(strings.NewReader(log), "/")
		if err != nil {
			return
		}
		for _, a := range acc {
			if !filepath.IsAbs(a.Path) || pseudoFS(a.Path) {
				t.Errorf("ParseStrace returned %+v", a)
			}
		}
	})
}
