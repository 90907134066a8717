//go:build linux

package trace

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// jail is a cgroup (v2) of its own for a traced workload: everything the workload starts stays in it,
// whatever it does to leave the trace (CLONE_UNTRACED, setsid, a double fork), and is killed with
// cgroup.kill when the run ends. A PID namespace would do the same, but would make the workload PID 1,
// which drops the signals it sends itself and shows it other pids.
type jail struct{ dir string }

var jailSeq atomic.Int64

// newJail makes the cgroup beside this process's own, or returns an error saying why it cannot (no
// cgroup2 file system, no permission): the run then goes on without one.
func newJail() (*jail, error) {
	mount, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	own, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(mount, own, fmt.Sprintf("scratchpack-trace-%d-%d", os.Getpid(), jailSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("making the workload's cgroup: %w", err)
	}
	return &jail{dir: dir}, nil
}

// add moves pid (stopped before it runs anything) into the jail; its children are born there.
func (j *jail) add(pid int) error {
	return os.WriteFile(filepath.Join(j.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}

// close kills everything left in the jail and removes it.
func (j *jail) close() {
	_ = os.WriteFile(filepath.Join(j.dir, "cgroup.kill"), []byte("1"), 0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := os.Remove(j.dir); err == nil || errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond) // the killed are still exiting
	}
}

// cgroup2Mount finds where the cgroup2 file system is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified
// beside cgroup v1 hierarchies).
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE SUPEROPTIONS
		left, right, ok := strings.Cut(sc.Text(), " - ")
		if !ok || !strings.HasPrefix(right, "cgroup2 ") {
			continue
		}
		if fields := strings.Fields(left); len(fields) >= 5 {
			return fields[4], nil
		}
	}
	return "", errors.New("no cgroup2 file system is mounted")
}

// ownCgroup is this process's cgroup v2 path ("0::/PATH" in /proc/self/cgroup).
func ownCgroup() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("this process has no cgroup v2 path")
}
