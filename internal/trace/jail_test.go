package trace

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// untracedVar turns the test binary into a workload that starts /bin/sleep with CLONE_UNTRACED (which
// ptrace never sees) in a session of its own, writes its pid to the file the variable names, and exits.
const untracedVar = "SCRATCHPACK_TRACE_TEST_UNTRACED"

func init() {
	marker := os.Getenv(untracedVar)
	if marker == "" {
		return
	}
	pid, err := syscall.ForkExec("/bin/sleep", []string{"sleep", "60"}, &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_UNTRACED, Setsid: true},
	})
	if err != nil {
		os.Exit(3)
	}
	if err := os.WriteFile(marker, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		os.Exit(4)
	}
	os.Exit(0)
}

// TestRunKillsWhatEscapesTheTrace: a process started with CLONE_UNTRACED in a new session is not traced, but
// it dies with the run (the workload's cgroup is killed); without the cgroup it would outlive scratchpack.
func TestRunKillsWhatEscapesTheTrace(t *testing.T) {
	requirePtrace(t)
	j, err := newJail()
	if err != nil {
		t.Skipf("no cgroup v2 to put a workload in here: %v", err)
	}
	j.close()
	for _, jailed := range []bool{true, false} {
		marker := t.TempDir() + "/pid"
		_, code, err := run(t.Context(), []string{os.Args[0]}, Options{Env: []string{untracedVar + "=" + marker}, Timeout: time.Minute}, config{noJail: !jailed})
		if err != nil || code != 0 {
			t.Fatalf("jailed %v: exit %d, %v", jailed, code, err)
		}
		data, err := os.ReadFile(marker)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		alive := func() bool {
			st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			return err == nil && !strings.Contains(string(st), ") Z ")
		}
		deadline := time.Now().Add(3 * time.Second)
		for alive() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if jailed && alive() {
			t.Errorf("the untraced sleep (pid %d) outlived the run", pid)
		}
		if !jailed {
			if !alive() {
				t.Errorf("without the cgroup the untraced sleep died anyway: the test shows nothing")
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				t.Error(err)
			}
		}
	}
}
