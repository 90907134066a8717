package trace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrPtraceUnavailable reports that the kernel refused to let the command be
// traced: PTRACE_TRACEME failed with EPERM, as it does under a seccomp
// profile that blocks ptrace (Docker's default on older kernels) or a
// restrictive Yama ptrace_scope. Run --trace elsewhere, or list the files.
var ErrPtraceUnavailable = errors.New("ptrace is not permitted here")

// defaultEnv is the environment of a command whose Options.Env is nil.
var defaultEnv = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}

// Options configures Run.
//
// (The project's style prefers functional options; the --trace wiring asked
// for this struct, and every field's zero value is a sensible default.)
type Options struct {
	// Root, if not "" or "/", is a directory the command is chroot'ed into
	// before exec (the command and everything it uses run inside it), and
	// recorded paths are inside it. Chroot needs CAP_SYS_CHROOT. With
	// Sandbox, Root becomes the root of the command's mount namespace
	// instead.
	Root string
	// Dir is the working directory, inside Root. "" means the caller's
	// working directory without Root, and "/" with it.
	Dir string
	// Env is the command's environment; nil means only
	// PATH=/usr/local/bin:/usr/bin:/bin. argv[0] without a slash is looked up
	// in this PATH, inside Root.
	Env []string
	// Stdout and Stderr receive the command's output; nil discards it.
	Stdout, Stderr io.Writer
	// Stdin is the command's standard input; nil means /dev/null.
	Stdin *os.File
	// Credential, if set, is the user and group the command runs as (set after chroot, before exec);
	// the tracer stays root. Supplementary groups are Credential.Groups (none when empty).
	// With Sandbox, these are IDs inside its user namespace.
	Credential *syscall.Credential
	// Timeout, if positive, bounds the whole run; when it expires the whole
	// tree is killed and Run returns an error wrapping
	// context.DeadlineExceeded.
	Timeout time.Duration
	// Sandbox, if set, runs the command in namespaces of its own (see
	// Sandbox), for a workload that is not trusted. It requires Root.
	Sandbox *Sandbox
	// Probe, if set, is called in a goroutine of its own once the command
	// runs, with the command's pid (as the host sees it). When Probe
	// returns, the run is ended: SIGTERM to the command, and 5 s later
	// SIGKILL to everything left. Run then returns no error for that end,
	// and the command's exit code as observed; if Probe returned an error,
	// Run returns one wrapping it. If the command ends first, Probe's ctx is
	// cancelled and Run returns an error wrapping ErrWorkloadEnded. Probe must
	// return soon once its ctx is done. WaitListening and InNetNS are made
	// for it.
	Probe func(ctx context.Context, pid int) error
}

// Sandbox runs the command in its own user, mount, PID, network, IPC and UTS
// namespaces, for tracing an untrusted image's program (as `scratchpack slim
// --trace` does):
//
//   - user: IDs 0..Size-1 inside are host IDs HostID..HostID+Size-1, both
//     uids and gids; no other host ID exists inside, host root included.
//     Options.Credential names IDs inside (nil: 0, root of the namespace, with
//     no supplementary groups). Root's files must belong to the shifted IDs
//     (file owner u inside is HostID+u on the host), as an image unpacked
//     for the sandbox is; the host's other files are out of reach anyway.
//   - mount: Root becomes the namespace's root (pivot_root, the host's tree
//     detached: not a chroot, which the namespace's root could leave), with
//     a proc of its own on /proc and a tmpfs on /dev holding null, zero,
//     full, random, urandom and tty (bound from the host's), fd, stdin,
//     stdout and stderr (symlinks into /proc/self/fd) and a tmpfs on shm;
//     no devpts. /proc and /dev are made in Root if missing.
//   - PID: the command is PID 1 of its namespace; when it ends, the kernel
//     kills the rest. Like any PID 1, it gets no signal it has no handler
//     for, from inside or from the host (but SIGKILL and SIGSTOP from the host).
//   - network: only a loopback interface, up, so a server can listen on
//     127.0.0.1 and a probe reach it with InNetNS.
//   - IPC and UTS: the host name is "scratchpack".
//
// Recorded paths are inside Root, as without a sandbox. Root is changed only
// by the /proc and /dev made if missing; the mounts exist in the namespace
// only.
//
// Setting it up needs root, and a kernel that permits user namespaces
// (user.max_user_namespaces > 0, no seccomp profile or AppArmor rule against
// them) and has open_tree(2) (Linux 5.2). It is done by the running program
// itself (any program that links this package), re-executed through
// /proc/self/exe in the new namespaces: that file must be executable by
// host ID HostID. The command's arguments and environment reach it in one
// environment variable, at most 128 KiB. A failure there is returned by Run,
// naming the step ("mounting proc on /proc: ...").
//
// It is no seccomp or capability filter: the command is root of its user
// namespace unless Credential says otherwise, and the kernel's whole syscall
// surface is open to it. Sandboxes with the same HostID share IDs; their PID
// namespaces still keep them from signalling or tracing each other.
type Sandbox struct {
	// HostID is the host uid and gid that 0 inside maps to; IDs 0..Size-1
	// inside map to HostID..HostID+Size-1. It must be positive: 0 would make
	// root inside host root.
	HostID int
	// Size is how many IDs the namespace has (65536 holds every ID an image
	// normally uses).
	Size int
}

// ErrWorkloadEnded reports that the traced command ended before its
// Options.Probe returned.
var ErrWorkloadEnded = errors.New("the workload ended before the probe finished")

// config holds knobs for tests of the tracer itself.
type config struct {
	// noSyscallInfo forces the pre-5.3 way of telling syscall entry from
	// exit (PTRACE_GETREGS and a per-thread toggle).
	noSyscallInfo bool
	// noJail runs the command without a cgroup of its own.
	noJail bool
	// probeGrace, if positive, replaces the 5 s between the SIGTERM and the
	// SIGKILL that end a run after its probe.
	probeGrace time.Duration
}

// procSpec is the command Run starts, after defaults and lookup.
type procSpec struct {
	path  string   // file to execve, as the child names it
	named string   // path recorded for the initial exec (absolute, inside root)
	argv  []string // argv, argv[0] unchanged
	env   []string // environment
	cred  *syscall.Credential
	root  string    // host path of the root (symlinks resolved), or ""
	dir   string    // working directory, inside root ("" = inherit)
	files []uintptr // stdin, stdout, stderr
	// sandbox, if set, starts the command in namespaces of its own.
	sandbox *Sandbox
	probe   func(ctx context.Context, pid int) error
}

// Run starts argv under ptrace and records every file the command and all its
// threads and descendants use, in first-use order, de-duplicated by (Path, Op);
// see the Op constants for which syscalls are recorded. Failed calls are not
// recorded, nor are paths under /proc, /sys and /dev. exitCode is the
// command's exit status, or 128+N if a signal N killed it.
//
// This is the only function in scratchpack that runs anything, and it runs
// the command for real, with the caller's privileges unless Options.Sandbox
// confines it: only for --trace.
//
// The run ends when the command (the first process) exits: like a container
// whose PID 1 exits, the processes it leaves behind are killed. With
// Options.Probe it also ends when the probe returns (a server has answered). Where a cgroup
// v2 can be made (as root), the command starts in one of its own, so that this
// includes what escaped the trace: a CLONE_UNTRACED child, a setsid'ed daemon. When ctx is
// done or Options.Timeout expires the whole tree is killed too, and Run
// returns what it recorded so far with an error wrapping ctx.Err().
//
// Relative paths are resolved against /proc/TID/cwd (or /proc/TID/fd/DIRFD)
// read when the call returns: that directory comes with its symlinks resolved
// by the kernel. Only linux/amd64 is supported (errors.ErrUnsupported
// elsewhere); 32-bit (int 0x80) and x32 syscalls of a tracee are not decoded.
//
// A trace can miss files:
//   - used in a run that took another code path (an error path, a locale, a
//     plugin selected by input);
//   - opened by a process the trace cannot follow: one started outside the
//     tree (a daemon spawned via D-Bus or systemd, a process reached over a
//     socket) that hands back data or an fd;
//   - used without a path-based syscall of the tree: fds received over a unix
//     socket (SCM_RIGHTS) and then mmapped or read, io_uring IORING_OP_OPENAT,
//     open_by_handle_at, files the kernel opens itself (PT_INTERP, the #!
//     interpreter, binfmt_misc handlers, firmware, modules);
//   - probed only by calls not recorded here (statfs, getxattr,
//     inotify_add_watch, getdents of a directory whose entries it then does
//     not use); files found absent are not recorded, though a program may
//     depend on their absence;
//
// and it records files a run used that a later run may not need. mmap is not
// recorded: a traced process maps a file through an fd, and the fd's open is
// recorded, except for the fds listed above. Under ptrace set-user-ID bits
// are not honoured and the tree cannot ptrace its own children (gdb, strace):
// runs that depend on either behave differently when traced.
func Run(ctx context.Context, argv []string, opts Options) (accesses []Access, exitCode int, err error) {
	return run(ctx, argv, opts, config{})
}

func run(ctx context.Context, argv []string, opts Options, cfg config) ([]Access, int, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, -1, errors.New("tracing: empty command")
	}
	spec := procSpec{argv: argv, env: opts.Env, dir: opts.Dir, cred: opts.Credential, sandbox: opts.Sandbox, probe: opts.Probe}
	if spec.env == nil {
		spec.env = defaultEnv
	}
	if opts.Root != "" && opts.Root != "/" {
		root, err := filepath.Abs(opts.Root)
		if err == nil {
			root, err = filepath.EvalSymlinks(root)
		}
		if err != nil {
			return nil, -1, fmt.Errorf("resolving root %q: %w", opts.Root, err)
		}
		spec.root = root
		if spec.dir == "" {
			spec.dir = "/"
		}
	}
	if err := checkSandbox(spec); err != nil {
		return nil, -1, err
	}
	base := spec.dir
	if base == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, -1, fmt.Errorf("getting working directory: %w", err)
		}
		base = wd
	} else if !filepath.IsAbs(base) {
		return nil, -1, fmt.Errorf("working directory %q is not absolute", base)
	}
	path, err := lookPath(spec.root, argv[0], spec.env)
	if err != nil {
		return nil, -1, err
	}
	spec.path, spec.named = path, resolve(path, base)

	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, -1, fmt.Errorf("tracing %q: %w", argv[0], err)
	}

	var std stdio
	defer std.close()
	if spec.files, err = std.open(opts.Stdin, opts.Stdout, opts.Stderr); err != nil {
		return nil, -1, err
	}
	acc, code, err := traceCommand(ctx, spec, cfg)
	// Every process that held the pipes' write ends is dead now.
	std.finish()
	return acc, code, err
}

// checkSandbox refuses a sandbox that cannot be set up as asked.
func checkSandbox(spec procSpec) error {
	sb := spec.sandbox
	if sb == nil {
		return nil
	}
	switch {
	case spec.root == "":
		return errors.New("tracing in a sandbox: no root directory: a sandbox needs Options.Root")
	case sb.HostID <= 0 || sb.Size <= 0 || int64(sb.HostID)+int64(sb.Size) > 1<<32-1:
		return fmt.Errorf("tracing in a sandbox: host IDs %d..%d are not a range of host IDs above 0",
			sb.HostID, int64(sb.HostID)+int64(sb.Size)-1)
	}
	if c := spec.cred; c != nil {
		for _, id := range append([]uint32{c.Uid, c.Gid}, c.Groups...) {
			if int64(id) >= int64(sb.Size) {
				return fmt.Errorf("tracing in a sandbox: credential ID %d is not among the sandbox's IDs 0..%d", id, sb.Size-1)
			}
		}
	}
	return nil
}

// lookPath finds name the way execvp would, in env's PATH, inside root.
func lookPath(root, name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	pathList := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathList = v
		}
	}
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		host := p
		if root != "" {
			host = filepath.Join(root, p)
		}
		if fi, err := os.Stat(host); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	where := "the host"
	if root != "" {
		where = "root " + root
	}
	return "", fmt.Errorf("finding %q in PATH %q in %s: %w; name it by its path or set PATH in the environment",
		name, pathList, where, exec.ErrNotFound)
}

// stdio holds the command's standard files and the copiers feeding writers
// that are not *os.File.
type stdio struct {
	toClose []io.Closer // files to close after the command is dead
	copiers sync.WaitGroup
}

func (s *stdio) open(stdin *os.File, stdout, stderr io.Writer) ([]uintptr, error) {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", os.DevNull, err)
	}
	s.toClose = append(s.toClose, null)
	files := []uintptr{null.Fd()}
	if stdin != nil {
		files[0] = stdin.Fd()
	}
	for _, w := range []io.Writer{stdout, stderr} {
		switch w := w.(type) {
		case nil:
			files = append(files, null.Fd())
		case *os.File:
			files = append(files, w.Fd())
		default:
			r, pw, err := os.Pipe()
			if err != nil {
				return nil, fmt.Errorf("creating output pipe: %w", err)
			}
			s.toClose = append(s.toClose, pw)
			files = append(files, pw.Fd())
			s.copiers.Go(func() {
				defer r.Close()
				// A failing writer must not block the command: keep draining.
				if _, err := io.Copy(w, r); err != nil {
					_, _ = io.Copy(io.Discard, r)
				}
			})
		}
	}
	return files, nil
}

// finish closes the parent's ends and waits for the copiers to drain.
func (s *stdio) finish() {
	s.close()
	s.copiers.Wait()
}

func (s *stdio) close() {
	for _, c := range s.toClose {
		_ = c.Close() // nothing was written through these in this process
	}
	s.toClose = nil
}
