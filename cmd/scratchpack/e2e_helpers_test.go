package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The environment variables that turn the test binary into runInRoot's last step (see init below).
const (
	chrootRootVar = "SCRATCHPACK_E2E_CHROOT"
	chrootEnvVar  = "SCRATCHPACK_E2E_ENV"
	chrootUserVar = "SCRATCHPACK_E2E_USER" // "UID:GID" to run as, after chroot
)

// init is the last step of runInRoot, run in a copy of the test binary that unshare started: chroot into the
// root, then execve the program with exactly the environment the test asked for. chroot(8) cannot do this
// step: it is itself dynamically linked, so LD_TRACE_LOADED_OBJECTS or LD_LIBRARY_PATH in its environment
// would apply to chroot and not to the program. Here the program's environment exists only from its execve.
func init() {
	root := os.Getenv(chrootRootVar)
	if root == "" {
		return
	}
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "runInRoot: %v\n", err)
		os.Exit(127)
	}
	var env []string
	if err := json.Unmarshal([]byte(os.Getenv(chrootEnvVar)), &env); err != nil {
		fail(fmt.Errorf("%s: %w", chrootEnvVar, err))
	}
	argv := os.Args[1:]
	if len(argv) == 0 {
		fail(errors.New("no program given"))
	}
	if err := syscall.Chroot(root); err != nil {
		fail(fmt.Errorf("chroot %s: %w", root, err))
	}
	if err := syscall.Chdir("/"); err != nil {
		fail(err)
	}
	if ids := os.Getenv(chrootUserVar); ids != "" {
		var uid, gid int
		if _, err := fmt.Sscanf(ids, "%d:%d", &uid, &gid); err != nil {
			fail(fmt.Errorf("%s=%q: %w", chrootUserVar, ids, err))
		}
		if err := syscall.Setgroups(nil); err != nil {
			fail(err)
		}
		if err := syscall.Setgid(gid); err != nil {
			fail(err)
		}
		if err := syscall.Setuid(uid); err != nil {
			fail(err)
		}
	}
	prog := argv[0]
	if !strings.Contains(prog, "/") {
		// Searched in the PATH the program gets, inside the root, as execvp would.
		pathVar := ""
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				pathVar = v
			}
		}
		for _, dir := range strings.Split(pathVar, ":") {
			if st, err := os.Stat(path.Join(dir, prog)); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				prog = path.Join(dir, prog)
				break
			}
		}
	}
	fail(fmt.Errorf("executing %s in %s: %w", prog, root, syscall.Exec(prog, argv, env)))
}

// needRoot skips t when this process cannot chroot or make mount namespaces: both need root
// (CAP_SYS_CHROOT, CAP_SYS_ADMIN), which no package can give.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running a built root needs root: chroot (CAP_SYS_CHROOT) and mount namespaces (CAP_SYS_ADMIN)")
	}
}

// needTools fails t when a tool that .ci/install-deps installs is missing: each can be installed, so its
// absence is a broken setup, not a reason to skip.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run .ci/install-deps (it installs what these tests need)", tool)
		}
	}
}

// runInRoot runs argv inside the root filesystem directory root the way a container runtime would: in a
// private mount namespace (unshare --mount --fork) where the host's /dev is bind-mounted at root/dev and a
// fresh proc is mounted at root/proc, then chrooted into root, with the environment PATH=/usr/bin:/bin plus
// env and nothing else, no standard input and a 30 s limit. The namespace, and so every mount, dies with the
// process; root/dev and root/proc are removed afterwards if this call created them, so the tree is as built.
func runInRoot(t *testing.T, root string, env []string, argv ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runInRootAs(t, root, "", env, argv...)
}

// runInRootAs is runInRoot as the user ids "UID:GID" ("" for root), set after chroot.
func runInRootAs(t *testing.T, root, ids string, env []string, argv ...string) (stdout, stderr string, err error) {
	t.Helper()
	needRoot(t)
	needTools(t, "unshare", "mount")
	if len(argv) == 0 {
		t.Fatal("runInRoot: no program")
	}
	root, err = filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range env {
		if !strings.Contains(kv, "=") {
			t.Fatalf("runInRoot: bad environment entry %q", kv)
		}
	}
	rootInfo, err := os.Stat(root)
	if err != nil {
		t.Fatalf("runInRoot: %v", err)
	}
	created := false
	defer func() {
		// Making and removing dev and proc changed the root directory's times: put them back.
		if st, ok := rootInfo.Sys().(*syscall.Stat_t); ok && created {
			if err := os.Chtimes(root, time.Unix(st.Atim.Unix()), rootInfo.ModTime()); err != nil {
				t.Errorf("runInRoot: %v", err)
			}
		}
	}()
	for _, d := range []string{"dev", "proc"} {
		p := filepath.Join(root, d)
		st, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatalf("runInRoot: %v", err)
			}
			created = true
			defer func() {
				if err := os.Remove(p); err != nil {
					t.Errorf("runInRoot: removing the %s it created: %v", p, err)
				}
			}()
		case err != nil:
			t.Fatalf("runInRoot: %v", err)
		case !st.IsDir():
			// Mounting over a symbolic link would mount wherever it points, maybe on the host.
			t.Fatalf("runInRoot: %s exists and is not a directory (%s)", p, st.Mode().Type())
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	mountBin, _ := exec.LookPath("mount")
	envJSON, err := json.Marshal(append([]string{"PATH=/usr/bin:/bin"}, env...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// unshare makes the new namespace's mounts private (its default --propagation private), so nothing mounted
	// here reaches the host; --kill-child takes the program down if unshare is killed.
	script := `set -e
"$MOUNT" --rbind /dev "$ROOT/dev"
"$MOUNT" -t proc proc "$ROOT/proc"
exec "$@"`
	cmd := exec.CommandContext(ctx, "unshare", append([]string{"--mount", "--fork", "--kill-child", "--", "/bin/sh", "-c", script, "sh", self}, argv...)...)
	cmd.Env = []string{
		"PATH=/usr/bin:/bin",
		"MOUNT=" + mountBin,
		"ROOT=" + root,
		chrootRootVar + "=" + root,
		chrootEnvVar + "=" + string(envJSON),
		chrootUserVar + "=" + ids,
	}
	cmd.Stdin = nil
	var outBuf, errBuf strings.Builder
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("%v in %s: killed after 30 s: %w", argv, root, err)
	}
	return outBuf.String(), errBuf.String(), err
}

// mustRunInRoot is runInRoot that fails t unless argv exits 0; it returns stdout.
func mustRunInRoot(t *testing.T, root string, env []string, argv ...string) string {
	t.Helper()
	stdout, stderr, err := runInRoot(t, root, env, argv...)
	if err != nil {
		t.Fatalf("running %q in %s: %v\nstdout: %s\nstderr: %s", argv, root, err, stdout, stderr)
	}
	return stdout
}

// startRegistry starts Debian's docker-registry on a free loopback port with its storage in a temporary
// directory, waits until /v2/ answers 200, stops it when t ends and returns "127.0.0.1:PORT".
func startRegistry(t *testing.T) string {
	t.Helper()
	needTools(t, "docker-registry")
	dir := t.TempDir()
	var lastErr error
	// The port is free when picked but may be taken before the registry binds it: try again then.
	for attempt := 0; attempt < 5; attempt++ {
		addr, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if err := tryRegistry(t, dir, addr, attempt); err != nil {
			lastErr = err
			continue
		}
		return addr
	}
	t.Fatalf("starting docker-registry: %v", lastErr)
	return ""
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func tryRegistry(t *testing.T, dir, addr string, attempt int) error {
	storage := filepath.Join(dir, "storage-"+strconv.Itoa(attempt))
	config := filepath.Join(dir, "config-"+strconv.Itoa(attempt)+".yml")
	yml := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, storage, addr)
	if err := os.WriteFile(config, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd := exec.Command("docker-registry", "serve", config)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("docker-registry on %s exited: %s", addr, logs.String())
		default:
		}
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Cleanup(func() {
					stop()
					if t.Failed() {
						t.Logf("docker-registry log:\n%s", logs.String())
					}
				})
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return fmt.Errorf("docker-registry on %s: /v2/ did not answer 200 within 20 s: %s", addr, logs.String())
}

// buildOK runs `scratchpack build ARGS...` in-process, fails t unless it exits 0 with nothing but one line on
// stdout, and returns that line.
func buildOK(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := scratchpack(t, append([]string{"build"}, args...)...)
	if code != 0 {
		t.Fatalf("scratchpack build %q: exit %d\nstderr: %s", args, code, stderr)
	}
	if strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("scratchpack build %q: stdout is not one line: %q", args, stdout)
	}
	return strings.TrimSuffix(stdout, "\n")
}

// buildDigest is buildOK for an image output: stdout must be a sha256 digest, which it returns.
func buildDigest(t *testing.T, args ...string) string {
	t.Helper()
	out := buildOK(t, args...)
	hexPart, ok := strings.CutPrefix(out, "sha256:")
	if _, err := hex.DecodeString(hexPart); !ok || err != nil || len(hexPart) != 64 {
		t.Fatalf("scratchpack build %q: stdout %q is not a sha256 digest", args, out)
	}
	return out
}

// hostTool runs a host tool and fails t unless it exits 0; it returns stdout.
func hostTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	needTools(t, name)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %q: %v\nstderr: %s", name, args, err, stderr.String())
	}
	return string(out)
}

// resolveInRoot follows path p inside root as the kernel would after chroot(root): every symbolic link,
// absolute targets taken from root, ".." never above it. It returns the host path of what p names, or an
// error when a component is missing or the links loop.
func resolveInRoot(root, p string) (string, error) {
	chain, err := symlinkChain(root, p)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, filepath.FromSlash(chain[len(chain)-1])), nil
}

// symlinkChain resolves p inside root (see resolveInRoot) and returns, as paths inside root, every symbolic
// link met on the way, in order, then what p finally names: exactly the paths an image must hold for p to
// resolve in it as it does in root.
func symlinkChain(root, p string) ([]string, error) {
	rest := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	cur := "/"
	var chain []string
	for hops := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		if name == "" || name == "." {
			continue
		}
		if name == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, name)
		host := filepath.Join(root, filepath.FromSlash(next))
		st, err := os.Lstat(host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s in %s: %w", p, root, err)
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return nil, fmt.Errorf("resolving %s in %s: too many levels of symbolic links", p, root)
		}
		target, err := os.Readlink(host)
		if err != nil {
			return nil, err
		}
		chain = append(chain, next)
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return append(chain, cur), nil
}

// treeSnapshot describes everything under dir (or the file dir): each path with its type, mode, size, link
// target and content hash, so two snapshots are equal exactly when nothing was changed.
func treeSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v %d %v", info.Mode(), info.Size(), info.ModTime().UnixNano())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x", sha256.Sum256(data))
		}
		snap[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}
