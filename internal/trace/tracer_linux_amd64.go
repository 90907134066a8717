//go:build linux && amd64

package trace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ptraceOptions: follow every new thread and process, report execs as events
// (so a successful exec is told from a failed one), mark syscall-stops, and
// have the kernel kill every tracee if the tracer thread goes away.
const ptraceOptions = unix.PTRACE_O_TRACESYSGOOD | unix.PTRACE_O_TRACEFORK | unix.PTRACE_O_TRACEVFORK |
	unix.PTRACE_O_TRACECLONE | unix.PTRACE_O_TRACEEXEC | unix.PTRACE_O_EXITKILL

// syscallStopSig is the stop signal of a syscall-stop under PTRACE_O_TRACESYSGOOD.
const syscallStopSig = unix.SIGTRAP | 0x80

// task is the tracer's state for one traced thread.
type task struct {
	comm    string // path of the thread's last successful exec
	started bool   // its first stop (SIGSTOP for auto-attached children) is seen
	inCall  bool   // between syscall entry and exit (used without PTRACE_GET_SYSCALL_INFO)
	call    string // name of the recorded syscall in progress, "" for others
	args    [6]uint64
	// entryPath is the path of an exec or chdir, resolved at entry: an exec
	// replaces the memory holding it, a chdir changes the cwd it is relative to.
	entryPath string
}

// tracer follows one command's tree. Everything but mu's fields belongs to
// the goroutine locked to the tracing thread.
type tracer struct {
	spec        procSpec
	tasks       map[int]*task
	rec         recorder
	main        int
	syscallInfo bool // PTRACE_GET_SYSCALL_INFO (Linux 5.3) works
	noVMReadv   bool // process_vm_readv is unavailable: use PTRACE_PEEKDATA

	mu         sync.Mutex
	live       map[int]bool // tids that may still be running, for killAll
	killing    bool         // every task, present and future, is to be killed
	cancelled  bool         // killing started because ctx was done
	mainExited bool         // the command's exit is seen
}

type traceResult struct {
	acc  []Access
	code int
	err  error
}

func traceCommand(ctx context.Context, spec procSpec, cfg config) ([]Access, int, error) {
	done := make(chan traceResult, 1)
	go func() {
		// ptrace requests are per thread: the thread that starts the command
		// is its tracer. It is never unlocked, so that the thread exits with
		// this goroutine and PTRACE_O_EXITKILL kills anything left attached.
		runtime.LockOSThread()
		t := &tracer{spec: spec, tasks: map[int]*task{}, live: map[int]bool{}}
		acc, code, err := t.run(ctx, cfg)
		done <- traceResult{acc, code, err}
	}()
	r := <-done
	return r.acc, r.code, r.err
}

func (t *tracer) run(ctx context.Context, cfg config) ([]Access, int, error) {
	pid, report, err := t.start()
	if err != nil {
		return nil, -1, err
	}
	if report != nil {
		defer report.Close()
	}
	t.main = pid

	// The child stops with SIGTRAP right after its execve. A sandbox helper
	// asks to be traced a little before its execve, and a signal can come
	// in between (the Go runtime's preemption signal): delivered.
	var ws unix.WaitStatus
	for {
		if _, err := wait4(pid, &ws); err != nil {
			return nil, -1, fmt.Errorf("waiting for %q to start: %w", t.spec.path, err)
		}
		if !ws.Stopped() || ws.StopSignal() == unix.SIGTRAP {
			break
		}
		sig := int(ws.StopSignal())
		if groupStop(pid) {
			sig = 0
		}
		_ = unix.PtraceCont(pid, sig)
	}
	if !ws.Stopped() {
		if report != nil {
			if err := readSandboxReport(report); err != nil {
				return nil, exitCode(ws), fmt.Errorf("starting %q in a sandbox in root %s: %w", t.spec.path, t.spec.root, err)
			}
		}
		return nil, exitCode(ws), fmt.Errorf("starting %q: it ended before it could be traced", t.spec.path)
	}
	// Stopped before it ran anything: into a cgroup of its own, so that what escapes the trace (a
	// CLONE_UNTRACED child, a setsid'ed daemon) still dies with the run.
	if !cfg.noJail {
		if j, err := newJail(); err == nil {
			if err := j.add(pid); err == nil {
				defer j.close()
			} else {
				j.close()
			}
		}
	}
	t.addTask(pid, &task{comm: t.spec.named, started: true})
	t.rec.add(Access{Path: t.spec.named, Op: OpExec, PID: pid, Comm: t.spec.named})
	t.recordExe(pid, t.spec.named)
	if err := unix.PtraceSetOptions(pid, ptraceOptions); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		_, _ = wait4(pid, &ws)
		return nil, -1, fmt.Errorf("setting ptrace options on %q: %w", t.spec.path, err)
	}
	if !cfg.noSyscallInfo {
		_, err := getSyscallInfo(pid)
		t.syscallInfo = err == nil
	}

	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			t.killAll(true)
		case <-stop:
		}
	}()

	t.resume(pid, 0)
	var probe *probeRun
	if t.spec.probe != nil {
		probe = t.startProbe(ctx, cfg)
	}
	code, interrupted, err := t.loop()
	var probeErr error
	if probe != nil {
		probeErr = probe.finish()
	}
	if err != nil {
		return t.rec.out, -1, err
	}
	if interrupted {
		return t.rec.out, -1, fmt.Errorf("tracing %q: %w", t.spec.path, ctx.Err())
	}
	return t.rec.out, code, probeErr
}

// start starts the command, stopped at its first exec, under ptrace. With a
// sandbox it also returns the read end of the helper's report pipe.
func (t *tracer) start() (int, *os.File, error) {
	if t.spec.sandbox != nil {
		return startSandboxed(t.spec)
	}
	pid, err := syscall.ForkExec(t.spec.path, t.spec.argv, &syscall.ProcAttr{
		Dir:   t.spec.dir,
		Env:   t.spec.env,
		Files: t.spec.files,
		Sys:   &syscall.SysProcAttr{Ptrace: true, Chroot: t.spec.root, Credential: t.spec.cred},
	})
	if err != nil {
		return 0, nil, t.startError(err)
	}
	return pid, nil, nil
}

// defaultProbeGrace is the time between the SIGTERM and the SIGKILL that end
// a run after its probe.
const defaultProbeGrace = 5 * time.Second

// probeRun is an Options.Probe running beside the trace.
type probeRun struct {
	t      *tracer
	cancel context.CancelFunc
	done   chan struct{}
	// Set under t.mu by the probe's goroutine if it returned before the
	// command's exit was seen.
	returned bool
	err      error
	grace    *time.Timer
}

// startProbe calls the probe in a goroutine; when it returns, the command is
// sent SIGTERM, and the whole tree SIGKILL after the grace period.
func (t *tracer) startProbe(ctx context.Context, cfg config) *probeRun {
	ctx, cancel := context.WithCancel(ctx)
	p := &probeRun{t: t, cancel: cancel, done: make(chan struct{})}
	grace := cfg.probeGrace
	if grace <= 0 {
		grace = defaultProbeGrace
	}
	go func() {
		defer close(p.done)
		err := t.spec.probe(ctx, t.main)
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.mainExited {
			return
		}
		p.returned, p.err = true, err
		if !t.killing {
			_ = unix.Kill(t.main, unix.SIGTERM)
			p.grace = time.AfterFunc(grace, func() { t.killAll(false) })
		}
	}()
	return p
}

// finish ends the probe after the trace and returns the error Run reports
// for it.
func (p *probeRun) finish() error {
	p.cancel()
	<-p.done
	t := p.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.grace != nil {
		p.grace.Stop()
	}
	switch {
	case !p.returned:
		return fmt.Errorf("tracing %q: %w", t.spec.path, ErrWorkloadEnded)
	case p.err != nil:
		return fmt.Errorf("probing %q: %w", t.spec.path, p.err)
	}
	return nil
}

// startError explains a ForkExec failure.
func (t *tracer) startError(err error) error {
	if errors.Is(err, unix.EPERM) {
		if t.spec.root == "" {
			return fmt.Errorf("starting %q under ptrace: %w: %w", t.spec.path, ErrPtraceUnavailable, err)
		}
		return fmt.Errorf("starting %q in root %s under ptrace: %w; chroot needs CAP_SYS_CHROOT (root), "+
			"and ptrace may be blocked by seccomp or Yama", t.spec.path, t.spec.root, err)
	}
	return fmt.Errorf("starting %q: %w", t.spec.path, err)
}

// loop handles stops until no tracee is left. It returns the command's exit
// code and whether the run was cut short by ctx.
func (t *tracer) loop() (code int, interrupted bool, err error) {
	code = -1
	for {
		var ws unix.WaitStatus
		tid, err := wait4(-1, &ws)
		if errors.Is(err, unix.ECHILD) {
			return code, interrupted, nil
		}
		if err != nil {
			t.killAll(false)
			t.drain()
			return code, interrupted, fmt.Errorf("waiting for traced processes: %w", err)
		}
		switch {
		case ws.Exited() || ws.Signaled():
			t.removeTask(tid)
			if tid == t.main {
				code = exitCode(ws)
				t.mu.Lock()
				interrupted = t.cancelled
				t.mainExited = true
				t.mu.Unlock()
				// Like a container whose PID 1 ended: the rest goes too.
				t.killAll(false)
			}
		case ws.Stopped():
			t.stopped(tid, ws)
		}
	}
}

// drain reaps tracees after killAll, when the loop cannot go on.
func (t *tracer) drain() {
	for {
		var ws unix.WaitStatus
		if _, err := wait4(-1, &ws); err != nil {
			return
		}
	}
}

// stopped handles one ptrace-stop of tid and resumes it.
func (t *tracer) stopped(tid int, ws unix.WaitStatus) {
	tk := t.tasks[tid]
	if tk == nil {
		// A new child whose creation event has not been reported yet.
		tk = &task{comm: t.inheritedComm(tid)}
		t.addTask(tid, tk)
	}
	sig := ws.StopSignal()
	switch {
	case sig == syscallStopSig:
		t.syscallStop(tid, tk)
		t.resume(tid, 0)
	case sig == unix.SIGTRAP && ws.TrapCause() > 0:
		t.event(tid, tk, ws.TrapCause())
		t.resume(tid, 0)
	case !tk.started && sig == unix.SIGSTOP:
		// The SIGSTOP every auto-attached child starts with.
		tk.started = true
		t.resume(tid, 0)
	case groupStop(tid):
		t.resume(tid, 0)
	default:
		// A real signal (SIGTRAP from int3 or kill too): deliver it.
		t.resume(tid, int(sig))
	}
}

// event handles a PTRACE_EVENT stop.
func (t *tracer) event(tid int, tk *task, cause int) {
	switch cause {
	case unix.PTRACE_EVENT_FORK, unix.PTRACE_EVENT_VFORK, unix.PTRACE_EVENT_CLONE:
		msg, err := unix.PtraceGetEventMsg(tid)
		if err != nil {
			return
		}
		child := int(msg)
		if c := t.tasks[child]; c != nil {
			if c.comm == "" {
				c.comm = tk.comm
			}
			return
		}
		t.addTask(child, &task{comm: tk.comm})
	case unix.PTRACE_EVENT_EXEC:
		// A non-leader thread that execs takes over the leader's tid, and
		// no death is reported for its old tid.
		if msg, err := unix.PtraceGetEventMsg(tid); err == nil && int(msg) != tid {
			if old := t.tasks[int(msg)]; old != nil {
				t.removeTask(int(msg))
				t.tasks[tid] = old
				tk = old
			}
		}
		p := tk.entryPath
		if p == "" {
			return
		}
		tk.comm = p
		t.rec.add(Access{Path: p, Op: OpExec, PID: tid, Comm: p})
		t.recordExe(tid, p)
	}
}

// recordExe records what the kernel runs after an exec of named, if it is
// another file than named (a symlink's target, a #! interpreter).
func (t *tracer) recordExe(tid int, named string) {
	exe := t.procLink(tid, "exe")
	if exe != "" && exe != named {
		t.rec.add(Access{Path: exe, Op: OpExe, PID: tid, Comm: named})
	}
}

// inheritedComm finds the comm of a new child from its parent, for children
// seen before their parent's creation event.
func (t *tracer) inheritedComm(tid int) string {
	tgid, ppid := procStatusIDs(tid)
	if tgid != tid {
		if p := t.tasks[tgid]; p != nil { // a thread
			return p.comm
		}
	}
	if p := t.tasks[ppid]; p != nil {
		return p.comm
	}
	return ""
}

func (t *tracer) resume(tid, sig int) {
	// ESRCH: the tracee was killed meanwhile; its death is still reported.
	_ = unix.PtraceSyscall(tid, sig)
}

func (t *tracer) addTask(tid int, tk *task) {
	t.tasks[tid] = tk
	t.mu.Lock()
	t.live[tid] = true
	kill := t.killing
	t.mu.Unlock()
	if kill {
		_ = unix.Kill(tid, unix.SIGKILL)
	}
}

func (t *tracer) removeTask(tid int) {
	delete(t.tasks, tid)
	t.mu.Lock()
	delete(t.live, tid)
	t.mu.Unlock()
}

// killAll sends SIGKILL to every tracee, and to every later one. It is safe
// to call from any goroutine (kill is not a ptrace request). A tid is removed
// from live right after it is reaped, so the window in which it could be
// reused by an unrelated process is a few instructions wide.
func (t *tracer) killAll(cancelled bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.killing = true
	if cancelled {
		t.cancelled = true
	}
	for tid := range t.live {
		_ = unix.Kill(tid, unix.SIGKILL)
	}
}

// wait4 waits for pid (-1: any) among the children and tracees of this
// thread only (__WNOTHREAD): other goroutines' children are not ours to reap.
func wait4(pid int, ws *unix.WaitStatus) (int, error) {
	for {
		tid, err := unix.Wait4(pid, ws, unix.WALL|unix.WNOTHREAD, nil)
		if !errors.Is(err, unix.EINTR) {
			return tid, err
		}
	}
}

func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
