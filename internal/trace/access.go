package trace

import (
	"path/filepath"
	"strings"
)

// Access is one successful use of a file by a traced process.
type Access struct {
	// Path is the absolute path as the process named it, resolved against its
	// working directory (or the directory fd of an *at call) and cleaned
	// lexically. Symlinks in the named part are not resolved; the directory it
	// was resolved against is, when it came from /proc (see Run). With
	// Options.Root set it is a path inside the root.
	Path string
	// Op is one of OpOpen, OpExec, OpExe, OpStat, OpReadlink, OpChdir.
	Op string
	// PID is the thread id that made the call (the process id for a
	// single-threaded process), as strace reports it.
	PID int
	// Comm is the program running in that thread at the time: the path of
	// its last successful execve, as named in that call (resolved like Path).
	// It is "" in ParseStrace output before the log shows an execve for it.
	Comm string
}

// Operations recorded in Access.Op.
const (
	// OpOpen: open, openat, openat2 or creat returned a file descriptor,
	// whatever the flags (read-only, write, O_PATH, O_DIRECTORY).
	OpOpen = "open"
	// OpExec: execve or execveat succeeded; Path is the file named in the call
	// (a #! script or an ELF binary). The kernel then loads PT_INTERP or the
	// #! interpreter itself, without a syscall; see OpExe.
	OpExec = "exec"
	// OpExe (Run only): after an exec, the file the kernel actually runs, as
	// /proc/PID/exe names it (symlinks resolved), when that differs from the
	// exec's Path: the target of a symlink, or the interpreter of a #! script.
	OpExe = "exe"
	// OpStat: stat, lstat, newfstatat, statx, access, faccessat or faccessat2
	// succeeded on a path (calls on an fd alone, with an empty path, are not
	// recorded: the fd's open already was). Existence probes, such as a
	// shell's PATH search or Python's import machinery, show up here.
	OpStat = "stat"
	// OpReadlink: readlink or readlinkat succeeded (the path is a symlink).
	OpReadlink = "readlink"
	// OpChdir: chdir succeeded (the path is a directory the program needs).
	OpChdir = "chdir"
)

// callSpec says where a recorded syscall keeps its path.
type callSpec struct {
	op    string
	dirfd int // index of the directory fd argument, or -1: relative to cwd
	path  int // index of the path argument
}

// fileCalls maps syscall names (as strace prints them) to what is recorded.
// Run maps x86-64 syscall numbers onto the same names.
var fileCalls = map[string]callSpec{
	"open":       {OpOpen, -1, 0},
	"creat":      {OpOpen, -1, 0},
	"openat":     {OpOpen, 0, 1},
	"openat2":    {OpOpen, 0, 1},
	"execve":     {OpExec, -1, 0},
	"execveat":   {OpExec, 0, 1},
	"stat":       {OpStat, -1, 0},
	"lstat":      {OpStat, -1, 0},
	"stat64":     {OpStat, -1, 0},
	"lstat64":    {OpStat, -1, 0},
	"newfstatat": {OpStat, 0, 1},
	"fstatat64":  {OpStat, 0, 1},
	"statx":      {OpStat, 0, 1},
	"access":     {OpStat, -1, 0},
	"faccessat":  {OpStat, 0, 1},
	"faccessat2": {OpStat, 0, 1},
	"readlink":   {OpReadlink, -1, 0},
	"readlinkat": {OpReadlink, 0, 1},
	"chdir":      {OpChdir, -1, 0},
}

// resolve makes p absolute against base, the directory a relative p is
// relative to. It returns "" when p is relative and base is unknown ("").
func resolve(p, base string) string {
	switch {
	case p == "":
		return ""
	case filepath.IsAbs(p):
		return filepath.Clean(p)
	case base == "" || !filepath.IsAbs(base):
		return ""
	default:
		return filepath.Join(base, p)
	}
}

// pseudoFS reports whether p is under /proc, /sys or /dev: kernel-provided
// trees that a FROM-scratch image does not carry as files.
func pseudoFS(p string) bool {
	for _, d := range []string{"/proc", "/sys", "/dev"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// recorder keeps accesses in first-seen order, de-duplicated by (Path, Op).
type recorder struct {
	seen map[[2]string]bool
	out  []Access
}

func (r *recorder) add(a Access) {
	if a.Path == "" || pseudoFS(a.Path) {
		return
	}
	k := [2]string{a.Path, a.Op}
	if r.seen[k] {
		return
	}
	if r.seen == nil {
		r.seen = make(map[[2]string]bool)
	}
	r.seen[k] = true
	r.out = append(r.out, a)
}
