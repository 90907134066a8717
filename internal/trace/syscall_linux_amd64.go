//go:build linux && amd64

package trace

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// syscallNames maps the x86-64 numbers of the recorded syscalls to the names
// fileCalls describes them by.
var syscallNames = map[uint64]string{
	unix.SYS_OPEN:       "open",
	unix.SYS_CREAT:      "creat",
	unix.SYS_OPENAT:     "openat",
	unix.SYS_OPENAT2:    "openat2",
	unix.SYS_EXECVE:     "execve",
	unix.SYS_EXECVEAT:   "execveat",
	unix.SYS_STAT:       "stat",
	unix.SYS_LSTAT:      "lstat",
	unix.SYS_NEWFSTATAT: "newfstatat",
	unix.SYS_STATX:      "statx",
	unix.SYS_ACCESS:     "access",
	unix.SYS_FACCESSAT:  "faccessat",
	unix.SYS_FACCESSAT2: "faccessat2",
	unix.SYS_READLINK:   "readlink",
	unix.SYS_READLINKAT: "readlinkat",
	unix.SYS_CHDIR:      "chdir",
}

// x32SyscallBit marks x32-ABI syscall numbers, which are not decoded.
const x32SyscallBit = 0x40000000

// maxPath bounds the strings read from a tracee (PATH_MAX, with its NUL).
const maxPath = 4096

// syscallInfo is struct ptrace_syscall_info (linux/ptrace.h).
type syscallInfo struct {
	op   uint8
	_    [3]uint8
	arch uint32
	_    uint64    // instruction_pointer
	_    uint64    // stack_pointer
	data [8]uint64 // entry: nr, args[6]; exit: rval, is_error
}

func getSyscallInfo(tid int) (syscallInfo, error) {
	var info syscallInfo
	_, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GET_SYSCALL_INFO, uintptr(tid),
		unsafe.Sizeof(info), uintptr(unsafe.Pointer(&info)), 0, 0)
	if errno != 0 {
		return info, errno
	}
	return info, nil
}

// syscallStop handles a syscall-entry or -exit stop of tid.
func (t *tracer) syscallStop(tid int, tk *task) {
	if t.syscallInfo {
		info, err := getSyscallInfo(tid)
		if err != nil {
			return
		}
		switch info.op {
		case unix.PTRACE_SYSCALL_INFO_ENTRY:
			nr := info.data[0]
			if info.arch != unix.AUDIT_ARCH_X86_64 || nr&x32SyscallBit != 0 {
				tk.call = ""
				return
			}
			t.enter(tid, tk, nr, [6]uint64(info.data[1:7]))
		case unix.PTRACE_SYSCALL_INFO_EXIT:
			t.exit(tid, tk, int64(info.data[0]))
		}
		return
	}
	// Before Linux 5.3: entry and exit alternate; orig_rax holds the number
	// and the argument registers survive the call.
	var regs unix.PtraceRegs
	if err := unix.PtraceGetRegs(tid, &regs); err != nil {
		return
	}
	tk.inCall = !tk.inCall
	if tk.inCall {
		t.enter(tid, tk, regs.Orig_rax, [6]uint64{regs.Rdi, regs.Rsi, regs.Rdx, regs.R10, regs.R8, regs.R9})
	} else {
		t.exit(tid, tk, int64(regs.Rax))
	}
}

func (t *tracer) enter(tid int, tk *task, nr uint64, args [6]uint64) {
	tk.call, tk.args, tk.entryPath = syscallNames[nr], args, ""
	if tk.call == "" {
		return
	}
	if op := fileCalls[tk.call].op; op == OpExec || op == OpChdir {
		tk.entryPath = t.pathArg(tid, tk.call, args)
	}
}

func (t *tracer) exit(tid int, tk *task, ret int64) {
	name := tk.call
	tk.call = ""
	if name == "" || ret < 0 {
		return
	}
	var p string
	switch op := fileCalls[name].op; op {
	case OpExec:
		return // recorded at PTRACE_EVENT_EXEC, which only a successful exec reaches
	case OpChdir:
		p = tk.entryPath
	default:
		p = t.pathArg(tid, name, tk.args)
	}
	t.rec.add(Access{Path: p, Op: fileCalls[name].op, PID: tid, Comm: tk.comm})
}

// pathArg reads the path argument of call and makes it absolute, inside the
// root. It returns "" when that cannot be done.
func (t *tracer) pathArg(tid int, call string, args [6]uint64) string {
	spec := fileCalls[call]
	p, err := t.readString(tid, args[spec.path])
	if err != nil {
		return ""
	}
	dirfd := int32(unix.AT_FDCWD)
	if spec.dirfd >= 0 {
		dirfd = int32(args[spec.dirfd])
	}
	if p == "" {
		// fexecve: execveat(fd, "", ..., AT_EMPTY_PATH). Empty paths of the
		// other calls act on an fd whose open was recorded.
		if call == "execveat" && args[4]&unix.AT_EMPTY_PATH != 0 {
			return t.procLink(tid, "fd/"+strconv.Itoa(int(dirfd)))
		}
		return ""
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	if dirfd == unix.AT_FDCWD {
		return resolve(p, t.procLink(tid, "cwd"))
	}
	return resolve(p, t.procLink(tid, "fd/"+strconv.Itoa(int(dirfd))))
}

// procLink reads /proc/TID/<name> (cwd, exe, fd/N) and returns it as a path
// inside the root, or "" if it is not a path there. The kernel names the
// target from the root of the tracee's mount namespace: without a sandbox
// that is this process's, and the root is stripped; in a sandbox it is the
// root itself (pivot_root), and the path is inside it already.
func (t *tracer) procLink(tid int, name string) string {
	p, err := os.Readlink("/proc/" + strconv.Itoa(tid) + "/" + name)
	if err != nil || !filepath.IsAbs(p) || strings.HasSuffix(p, " (deleted)") {
		return ""
	}
	if t.spec.sandbox != nil {
		return p
	}
	return inRoot(p, t.spec.root)
}

// inRoot turns a host path into a path inside root ("" if outside it).
func inRoot(p, root string) string {
	switch {
	case root == "":
		return p
	case p == root:
		return "/"
	case strings.HasPrefix(p, root+"/"):
		return p[len(root):]
	default:
		return ""
	}
}

// readString reads a NUL-terminated string at addr in tid's memory, one page
// at a time so that a string near the end of a mapping reads fine.
func (t *tracer) readString(tid int, addr uint64) (string, error) {
	if addr == 0 {
		return "", errors.New("NULL string")
	}
	page := uint64(os.Getpagesize())
	var out []byte
	buf := make([]byte, page)
	for len(out) < maxPath {
		chunk := buf[:page-addr%page]
		n, err := t.readMem(tid, addr, chunk)
		if i := bytes.IndexByte(chunk[:n], 0); i >= 0 {
			return string(append(out, chunk[:i]...)), nil
		}
		if err != nil {
			return "", err
		}
		if n == 0 {
			return "", fmt.Errorf("reading memory of %d at %#x: short read", tid, addr)
		}
		out = append(out, chunk[:n]...)
		addr += uint64(n)
	}
	return "", fmt.Errorf("reading memory of %d: string longer than %d bytes", tid, maxPath)
}

// readMem reads len(b) bytes at addr with process_vm_readv, or PTRACE_PEEKDATA
// where a seccomp profile or an old kernel refuses the former.
func (t *tracer) readMem(tid int, addr uint64, b []byte) (int, error) {
	if !t.noVMReadv {
		local := []unix.Iovec{{Base: &b[0]}}
		local[0].SetLen(len(b))
		remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
		n, err := unix.ProcessVMReadv(tid, local, remote, 0)
		if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) {
			return max(n, 0), err
		}
		t.noVMReadv = true
	}
	return unix.PtracePeekData(tid, uintptr(addr), b)
}

// groupStop tells a group-stop from a signal-delivery-stop: only the latter
// has siginfo. A group-stop is resumed without a signal, as strace does
// without PTRACE_SEIZE.
func groupStop(tid int) bool {
	var si [128]byte
	_, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GETSIGINFO, uintptr(tid), 0,
		uintptr(unsafe.Pointer(&si[0])), 0, 0)
	return errno == unix.EINVAL
}

// procStatusIDs reads Tgid and PPid from /proc/TID/status (0 if unknown).
func procStatusIDs(tid int) (tgid, ppid int) {
	f, err := os.Open("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.TrimSpace(v))
		switch k {
		case "Tgid":
			tgid = n
		case "PPid":
			ppid = n
		}
	}
	return tgid, ppid
}
