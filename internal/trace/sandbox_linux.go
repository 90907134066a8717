//go:build linux && amd64

package trace

// The sandbox (see Sandbox) is set up by a helper: this program, re-executed
// through /proc/self/exe in the new namespaces with sandboxEnv set, does what
// syscall.SysProcAttr cannot do between clone and exec (mounts, pivot_root,
// the loopback interface), then becomes the command with PTRACE_TRACEME and
// execve, so that the tracer sees the usual stop after the exec. The helper
// runs in init, before main and before any other goroutine of the program's
// own could start.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sandboxEnv holds the helper's sandboxConfig as JSON; it is the helper's
// whole environment, so the command's environment never reaches the helper's
// Go runtime (GODEBUG, GOMAXPROCS) and the variable never reaches the command.
const sandboxEnv = "_SCRATCHPACK_SANDBOX"

// sandboxReportFD is the helper's descriptor of the write end of a pipe for
// its error report.
const sandboxReportFD = 3

// sandboxExitCode is the helper's exit status when it fails before the exec.
const sandboxExitCode = 125

// sandboxHostname is the host name inside the sandbox.
const sandboxHostname = "scratchpack"

// stepTraceMe is the helper's step whose EPERM means ErrPtraceUnavailable.
const stepTraceMe = "asking to be traced (PTRACE_TRACEME)"

// sandboxConfig is what the helper is to do.
type sandboxConfig struct {
	Path   string   `json:"path"` // file to execute, inside the root
	Argv   []string `json:"argv"`
	Env    []string `json:"env"`
	Dir    string   `json:"dir"`  // working directory, inside the root
	Cred   bool     `json:"cred"` // set Uid, Gid and Groups
	Uid    uint32   `json:"uid"`  // inside the namespace, like Gid and Groups
	Gid    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"` // supplementary groups, inside the namespace
}

// sandboxError is the helper's report of the step that failed.
type sandboxError struct {
	Step  string        `json:"step"`  // "mounting proc on /proc"
	Errno syscall.Errno `json:"errno"` // 0 if the failure was no syscall's
}

func (e *sandboxError) Error() string {
	if e.Errno == 0 {
		return e.Step
	}
	return e.Step + ": " + e.Errno.Error()
}

func (e *sandboxError) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return e.Errno
}

// step makes a sandboxError of a failed call.
func step(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	e := &sandboxError{Step: fmt.Sprintf(format, args...)}
	if !errors.As(err, &e.Errno) {
		e.Step += ": " + err.Error()
	}
	return e
}

// startSandboxed starts the helper in new namespaces. The returned file is
// the read end of the helper's report pipe: after the helper exits instead
// of stopping at its exec, readSandboxReport says why.
//
// It must be called from a locked thread that is never unlocked: that
// thread's working directory becomes the root. The helper starts there, and
// so has the root at hand in its mount namespace (where the kernel moves a
// new namespace's first process's working directory) without walking the
// host directories above it, which host ID HostID may not search. A
// descriptor opened here would not do: it refers to a mount of this
// namespace, which the helper may not mount on or clone.
func startSandboxed(spec procSpec) (int, *os.File, error) {
	conf := sandboxConfig{Path: spec.path, Argv: spec.argv, Dir: spec.dir}
	for _, kv := range spec.env {
		if !strings.HasPrefix(kv, sandboxEnv+"=") { // a helper of its own, if the command is this program
			conf.Env = append(conf.Env, kv)
		}
	}
	if c := spec.cred; c != nil {
		conf.Cred, conf.Uid, conf.Gid, conf.Groups = true, c.Uid, c.Gid, c.Groups
	}
	data, err := json.Marshal(conf)
	if err != nil {
		return 0, nil, fmt.Errorf("encoding the sandbox's configuration: %w", err)
	}
	// The working directory of this thread only, not of the whole program.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return 0, nil, fmt.Errorf("starting %q in a sandbox: unsharing the tracer thread's working directory: %w", spec.path, err)
	}
	if err := unix.Chdir(spec.root); err != nil {
		return 0, nil, fmt.Errorf("starting %q in a sandbox: entering root %s: %w", spec.path, spec.root, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, nil, fmt.Errorf("creating the sandbox's report pipe: %w", err)
	}
	defer w.Close()
	files := append(slices.Clone(spec.files), w.Fd())
	ids := []syscall.SysProcIDMap{{ContainerID: 0, HostID: spec.sandbox.HostID, Size: spec.sandbox.Size}}
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"scratchpack-sandbox"}, &syscall.ProcAttr{
		Env:   []string{sandboxEnv + "=" + string(data)},
		Files: files,
		Sys: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWNET |
				unix.CLONE_NEWIPC | unix.CLONE_NEWUTS,
			UidMappings:                ids,
			GidMappings:                ids,
			GidMappingsEnableSetgroups: true,
			// Root of the namespace (host ID HostID) before the exec of the
			// helper: an exec by an ID that is not the namespace's root (host
			// root is none of its IDs) drops the capabilities the helper needs.
			Credential: &syscall.Credential{},
		},
	})
	if err != nil {
		r.Close()
		return 0, nil, sandboxStartError(spec, err)
	}
	return pid, r, nil
}

// sandboxStartError explains a failure to start the helper.
func sandboxStartError(spec procSpec, err error) error {
	exe, _ := os.Executable()
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EUSERS):
		return fmt.Errorf("starting %q in a sandbox: creating its namespaces: %w; the sandbox needs root and "+
			"user namespaces (sysctl user.max_user_namespaces, and no seccomp profile or AppArmor rule "+
			"that blocks them)", spec.path, err)
	case errors.Is(err, unix.E2BIG):
		return fmt.Errorf("starting %q in a sandbox: executing the helper: %w: the command's arguments and "+
			"environment go to it in one environment variable, of at most 128 KiB", spec.path, err)
	case errors.Is(err, unix.EACCES):
		return fmt.Errorf("starting %q in a sandbox: executing the helper %s as host uid %d: %w; it must be "+
			"executable by any user", spec.path, exe, spec.sandbox.HostID, err)
	}
	return fmt.Errorf("starting %q in a sandbox: executing the helper %s: %w", spec.path, exe, err)
}

// readSandboxReport reads what the helper reported before it exited (nil if
// nothing). A refused PTRACE_TRACEME wraps ErrPtraceUnavailable.
func readSandboxReport(r *os.File) error {
	// The helper has exited, so its report is in the pipe; a deadline, in
	// case another fork of this process still holds the write end.
	_ = r.SetReadDeadline(time.Now().Add(2 * time.Second))
	data, _ := io.ReadAll(io.LimitReader(r, 1<<16))
	if len(data) == 0 {
		return nil
	}
	var e sandboxError
	if err := json.Unmarshal(data, &e); err != nil || e.Step == "" {
		return errors.New(strings.TrimSpace(string(data)))
	}
	if e.Step == stepTraceMe && e.Errno == unix.EPERM {
		return fmt.Errorf("%w: %w", ErrPtraceUnavailable, &e)
	}
	return &e
}

func init() {
	conf, ok := os.LookupEnv(sandboxEnv)
	if !ok {
		return
	}
	// init runs on the main thread: the thread that the tracer started is
	// the one that sets everything up, asks to be traced and executes.
	runtime.LockOSThread()
	err := sandboxHelper(conf)
	if err == nil {
		err = errors.New("the sandbox helper returned without executing the command")
	}
	report := []byte(err.Error())
	var e *sandboxError
	if errors.As(err, &e) {
		report, _ = json.Marshal(e)
	}
	if _, werr := unix.Write(sandboxReportFD, report); werr != nil {
		fmt.Fprintf(os.Stderr, "scratchpack sandbox: %v\n", err)
	}
	unix.Exit(sandboxExitCode)
}

// sandboxHelper sets up the sandbox and executes the command. It returns
// only on failure.
func sandboxHelper(data string) error {
	if err := checkInSandbox(); err != nil {
		return err
	}
	var conf sandboxConfig
	if err := json.Unmarshal([]byte(data), &conf); err != nil {
		return fmt.Errorf("decoding %s: %w", sandboxEnv, err)
	}
	if _, err := unix.FcntlInt(sandboxReportFD, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return step(err, "marking descriptor %d close-on-exec", sandboxReportFD)
	}
	// Nothing done here may reach the host's mounts.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return step(err, "making the mounts private")
	}
	// The working directory is the root (see startSandboxed). A copy of its
	// mount (and those below it), mounted on it, is to become the root:
	// pivot_root needs a mount, and the descriptor of the copy reaches it
	// without a path.
	root, err := unix.OpenTree(unix.AT_FDCWD, ".", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return step(err, "cloning the root's mount (open_tree needs Linux 5.2)")
	}
	if err := unix.MoveMount(root, "", unix.AT_FDCWD, ".", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return step(err, "mounting the root")
	}
	if err := mountProc(root); err != nil {
		return err
	}
	if err := mountDev(root); err != nil {
		return err
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(sandboxHostname)); err != nil {
		return step(err, "setting the host name")
	}
	// pivot_root(".", ".") stacks the old root on the new one at "/"; its
	// detach leaves nothing of the host's tree in the namespace.
	if err := unix.Fchdir(root); err != nil {
		return step(err, "entering the root")
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return step(err, "pivoting into the root")
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return step(err, "detaching the host's file system")
	}
	if err := unix.Chdir("/"); err != nil {
		return step(err, "changing directory to /")
	}
	// The order of syscall.SysProcAttr: credentials, then the directory
	// (which the user must be able to enter), then ptrace and the exec.
	// Raw syscalls change this thread only, the one that executes.
	if conf.Cred {
		var groups unsafe.Pointer
		if len(conf.Groups) > 0 {
			groups = unsafe.Pointer(&conf.Groups[0])
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(conf.Groups)), uintptr(groups), 0); e != 0 {
			return step(e, "setting supplementary groups %v", conf.Groups)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETGID, uintptr(conf.Gid), 0, 0); e != 0 {
			return step(e, "setting gid %d", conf.Gid)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETUID, uintptr(conf.Uid), 0, 0); e != 0 {
			return step(e, "setting uid %d", conf.Uid)
		}
	}
	if err := unix.Chdir(conf.Dir); err != nil {
		return step(err, "changing directory to %s", conf.Dir)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0); e != 0 {
		return step(e, stepTraceMe)
	}
	return step(syscall.Exec(conf.Path, conf.Argv, conf.Env), "executing %s", conf.Path)
}

// checkInSandbox makes sure that the helper runs where the tracer started
// it: PID 1 of a user namespace that does not map host root. With
// sandboxEnv set by hand, it must not pivot the host's root.
func checkInSandbox() error {
	ids, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return fmt.Errorf("reading /proc/self/uid_map: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(ids)), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[1] == "0" {
			return fmt.Errorf("%s is set outside a sandbox (host root is mapped: %q); unset it", sandboxEnv, line)
		}
	}
	if os.Getpid() != 1 {
		return fmt.Errorf("%s is set outside a sandbox (pid %d, not 1); unset it", sandboxEnv, os.Getpid())
	}
	return nil
}

// fdPath names what fd refers to, for calls that take a path only.
func fdPath(fd int) string {
	return "/proc/self/fd/" + strconv.Itoa(fd)
}

// mkdirIn makes directory name in dir unless it exists, and opens it without
// following a symlink: what the image holds at /proc or /dev cannot send a
// mount elsewhere.
func mkdirIn(dir int, name string, mode uint32) (int, error) {
	if err := unix.Mkdirat(dir, name, mode); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, step(err, "making /%s in the root", name)
	}
	fd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, step(err, "opening /%s in the root (it must be a directory)", name)
	}
	return fd, nil
}

// mountProc mounts a proc of the new PID namespace on /proc.
func mountProc(root int) error {
	fd, err := mkdirIn(root, "proc", 0o555)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return step(unix.Mount("proc", fdPath(fd), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""),
		"mounting proc on /proc")
}

// sandboxDevices are bound from the host's /dev (skipped where the host has
// none).
var sandboxDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// sandboxDevLinks are the symlinks made in /dev.
var sandboxDevLinks = [][2]string{
	{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
}

// mountDev mounts a tmpfs on /dev with the usual devices, links and shm.
func mountDev(root int) error {
	fd, err := mkdirIn(root, "dev", 0o755)
	if err != nil {
		return err
	}
	err = unix.Mount("tmpfs", fdPath(fd), "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k")
	unix.Close(fd)
	if err != nil {
		return step(err, "mounting a tmpfs on /dev")
	}
	// Opened again, through the new mount: from here on the tree is ours.
	dev, err := unix.Openat(root, "dev", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return step(err, "opening /dev")
	}
	defer unix.Close(dev)
	for _, name := range sandboxDevices {
		host := "/dev/" + name
		if _, err := os.Stat(host); err != nil {
			continue
		}
		f, err := unix.Openat(dev, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o666)
		if err != nil {
			return step(err, "creating /dev/%s", name)
		}
		unix.Close(f)
		if err := unix.Mount(host, fdPath(dev)+"/"+name, "", unix.MS_BIND, ""); err != nil {
			return step(err, "binding %s on /dev/%s", host, name)
		}
	}
	for _, l := range sandboxDevLinks {
		if err := unix.Symlinkat(l[1], dev, l[0]); err != nil {
			return step(err, "linking /dev/%s to %s", l[0], l[1])
		}
	}
	if err := unix.Mkdirat(dev, "shm", 0o1777); err != nil {
		return step(err, "making /dev/shm")
	}
	return step(unix.Mount("shm", fdPath(dev)+"/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=65536k"),
		"mounting a tmpfs on /dev/shm")
}

// loopbackUp brings the network namespace's lo up.
func loopbackUp() error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return step(err, "opening a socket to configure lo")
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return step(err, "naming lo")
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return step(err, "reading the flags of lo")
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return step(unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr), "bringing lo up")
}
