//go:build linux

package trace

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// listenPoll is how often WaitListening looks.
const listenPoll = 50 * time.Millisecond

// WaitListening waits until a socket of the network namespace of process pid
// listens: a TCP socket (IPv4 or IPv6) in state LISTEN or a unix stream or
// seqpacket socket accepting connections (abstract or not), as
// /proc/PID/net/{tcp,tcp6,unix} show them. It looks every 50 ms until one
// does, or until ctx is done; then it returns an error wrapping ctx.Err().
//
// It is made for Options.Probe: in a sandbox the namespace is the command's
// own, so any listening socket is the workload's. Without one it is the
// host's, where something usually listens already. A process that cannot be
// read (it ended) is looked at again until ctx is done, which Run does when
// the command ends.
func WaitListening(ctx context.Context, pid int) error {
	tick := time.NewTicker(listenPoll)
	defer tick.Stop()
	var last error
	for {
		ok, err := listening(pid)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for process %d to listen: %w (last: %v)", pid, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for process %d to listen: %w", pid, ctx.Err())
		case <-tick.C:
		}
	}
}

// unixAcceptCon is __SO_ACCEPTCON in the Flags of /proc/net/unix: the socket
// listens.
const unixAcceptCon = 0x10000

// tcpListen is TCP_LISTEN in the st column of /proc/net/tcp.
const tcpListen = 0x0A

// listening reports whether a socket in pid's network namespace listens.
func listening(pid int) (bool, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/net/"
	for _, table := range []struct {
		name  string
		field int // of the column to look at
		test  func(uint64) bool
	}{
		{"tcp", 3, func(st uint64) bool { return st == tcpListen }},
		{"tcp6", 3, func(st uint64) bool { return st == tcpListen }},
		{"unix", 3, func(flags uint64) bool { return flags&unixAcceptCon != 0 }},
	} {
		data, err := os.ReadFile(dir + table.name)
		if err != nil {
			if table.name == "tcp" {
				return false, err // the others may be missing (no IPv6)
			}
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Scan() // the header
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) <= table.field {
				continue
			}
			if v, err := strconv.ParseUint(f[table.field], 16, 64); err == nil && table.test(v) {
				return true, nil
			}
		}
	}
	return false, nil
}

// InNetNS runs cmd, a program of the host, in the network namespace of
// process pid: in a sandbox, the command's, where 127.0.0.1 and abstract
// unix sockets are the command's own. Only the network namespace changes:
// cmd's files, users and processes are the host's. It returns cmd.Run's
// error.
//
// It is made for Options.Probe: a client that talks to the traced server.
// The namespace is entered by a thread of its own, which cmd is forked from
// and which ends with it.
func InNetNS(pid int, cmd *exec.Cmd) error {
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, in another namespace now, exits with
		// this goroutine instead of running others.
		runtime.LockOSThread()
		done <- inNetNS(pid, cmd)
	}()
	return <-done
}

func inNetNS(pid int, cmd *exec.Cmd) error {
	p := "/proc/" + strconv.Itoa(pid) + "/ns/net"
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the network namespace of process %d: %w", pid, &os.PathError{Op: "open", Path: p, Err: err})
	}
	err = unix.Setns(fd, unix.CLONE_NEWNET)
	unix.Close(fd)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("entering the network namespace of process %d: %w; that needs CAP_SYS_ADMIN", pid, err)
		}
		return fmt.Errorf("entering the network namespace of process %d: %w", pid, err)
	}
	return cmd.Run()
}
