//go:build linux

package trace

// Tests of Options.Probe, WaitListening and InNetNS, with and without a
// sandbox; the sandboxed server is testdata/sandboxprog (see sandbox_test.go).

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePort finds a TCP port no host process listens on.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func TestSandboxProbe(t *testing.T) {
	requireSandbox(t)
	prog := sandboxProg(t)
	root := serverRoot(t)
	tcp := "127.0.0.1:" + freePort(t)
	for _, tc := range []struct {
		name, network, address string
	}{
		{"tcp", "tcp", tcp},
		{"tcp6", "tcp6", "[::1]:" + freePort(t)},
		{"abstract unix socket", "unix", "@scratchpack-trace-test-" + strconv.Itoa(os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.network == "tcp6" {
				if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
					t.Skipf("no IPv6 loopback on this host: %v", err)
				} else {
					l.Close()
				}
			}
			var answer bytes.Buffer
			var hostDial error
			var pid int
			start := time.Now()
			acc, code, err := Run(t.Context(), []string{"/srv/prog", "serve", tc.network, tc.address, "/srv/answer"}, Options{
				Root: root, Sandbox: &testSandbox, Credential: &syscall.Credential{Uid: 1000, Gid: 1000},
				Timeout: time.Minute,
				Probe: func(ctx context.Context, p int) error {
					pid = p
					if err := WaitListening(ctx, p); err != nil {
						return err
					}
					// The host's network does not reach the server...
					if c, err := net.DialTimeout(tc.network, tc.address, time.Second); err == nil {
						c.Close()
					} else {
						hostDial = err
					}
					// ...a client in the command's network namespace does.
					cmd := exec.CommandContext(ctx, prog, "get", tc.network, tc.address)
					cmd.Stdout, cmd.Stderr = &answer, os.Stderr
					return InNetNS(p, cmd)
				},
			})
			if err != nil || code != 0 {
				t.Fatalf("Run = %d, %v; want 0 (the server's exit on SIGTERM), nil", code, err)
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("Run took %v: the server's SIGTERM did not end it", d)
			}
			if answer.String() != "42\n" {
				t.Errorf("the probe's client got %q, want %q", answer.String(), "42\n")
			}
			if hostDial == nil {
				t.Errorf("a client in the host's network reached the server at %s", tc.address)
			}
			if !gone(pid) {
				t.Errorf("the server (pid %d) still runs after Run", pid)
			}
			mustFind(t, acc, "/srv/prog", OpExec)
			if a := mustFind(t, acc, "/srv/answer", OpOpen); a.Comm != "/srv/prog" {
				t.Errorf("open of /srv/answer = %+v, want it by /srv/prog", a)
			}
		})
	}

	t.Run("a server deaf to SIGTERM is killed", func(t *testing.T) {
		start := time.Now()
		_, code, err := run(t.Context(), []string{"/srv/prog", "stubborn", "tcp", tcp}, Options{
			Root: root, Sandbox: &testSandbox, Timeout: time.Minute, Probe: WaitListening,
		}, config{probeGrace: 200 * time.Millisecond})
		if err != nil || code != 128+int(syscall.SIGKILL) {
			t.Errorf("Run = %d, %v; want %d, nil", code, err, 128+int(syscall.SIGKILL))
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("Run took %v with a grace of 200ms", d)
		}
	})

	t.Run("the probe's error", func(t *testing.T) {
		noAnswer := errors.New("no answer")
		_, code, err := Run(t.Context(), []string{"/srv/prog", "serve", "tcp", tcp}, Options{
			Root: root, Sandbox: &testSandbox, Timeout: time.Minute,
			Probe: func(ctx context.Context, pid int) error {
				if err := WaitListening(ctx, pid); err != nil {
					return err
				}
				return noAnswer
			},
		})
		if !errors.Is(err, noAnswer) || !strings.Contains(err.Error(), "probing") || code != 0 {
			t.Errorf("Run = %d, %v; want 0 and an error wrapping %q", code, err, noAnswer)
		}
	})

	t.Run("the workload ends first", func(t *testing.T) {
		var probeErr error
		_, code, err := Run(t.Context(), []string{"/srv/prog", "serve", "no-such-network", "x"}, Options{
			Root: root, Sandbox: &testSandbox, Timeout: time.Minute,
			Probe: func(ctx context.Context, pid int) error {
				probeErr = WaitListening(ctx, pid)
				return probeErr
			},
		})
		if !errors.Is(err, ErrWorkloadEnded) || code != 2 {
			t.Errorf("Run = %d, %v; want 2 (the failed listen) and ErrWorkloadEnded", code, err)
		}
		if !errors.Is(probeErr, context.Canceled) {
			t.Errorf("the probe returned %v, want context.Canceled", probeErr)
		}
	})
}

// TestProbeWithoutSandbox: the probe's end of the run works on any command.
func TestProbeWithoutSandbox(t *testing.T) {
	requirePtrace(t)
	for _, tc := range []struct {
		name   string
		argv   []string
		want   int
		before time.Duration
	}{
		{"SIGTERM", []string{"/bin/sleep", "100"}, 128 + int(syscall.SIGTERM), 4 * time.Second},
		{"SIGKILL after the grace", []string{"/bin/sh", "-c", `trap "" TERM; /bin/sleep 100`}, 128 + int(syscall.SIGKILL), 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			acc, code, err := run(t.Context(), tc.argv, Options{
				Timeout: time.Minute,
				Probe: func(ctx context.Context, pid int) error {
					time.Sleep(100 * time.Millisecond) // let the shell set its trap
					return nil
				},
			}, config{probeGrace: 300 * time.Millisecond})
			if err != nil || code != tc.want {
				t.Errorf("Run = %d, %v; want %d, nil", code, err, tc.want)
			}
			if d := time.Since(start); d > tc.before {
				t.Errorf("Run took %v", d)
			}
			checkTreeGone(t, acc)
		})
	}
}
