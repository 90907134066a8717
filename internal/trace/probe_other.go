//go:build !linux

package trace

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
)

// WaitListening waits until a socket of the network namespace of process pid
// listens; see the Linux version. Elsewhere it returns errors.ErrUnsupported.
func WaitListening(ctx context.Context, pid int) error {
	return fmt.Errorf("waiting for process %d to listen on %s: %w", pid, runtime.GOOS, errors.ErrUnsupported)
}

// InNetNS runs cmd in the network namespace of process pid; see the Linux
// version. Elsewhere it returns errors.ErrUnsupported.
func InNetNS(pid int, cmd *exec.Cmd) error {
	return fmt.Errorf("entering the network namespace of process %d on %s: %w", pid, runtime.GOOS, errors.ErrUnsupported)
}
