package main

// scratchpack slim on images made by other tools: a Debian 12 root (mmdebstrap) packed by umoci into one
// layout, tagged with the configs of three workloads: jq (exec form, with ports, labels, a volume and a
// variable), jq through a shell-form command line, and a Python app using the standard library from its
// working directory. Each slim image keeps its config, is a small part of its source, runs its workload
// under chroot, and is reproducible; the source is not changed.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/scratchpack/scratchpack/collector/rootfs"
	"github.com/scratchpack/scratchpack/internal/debtree"
)

const slimApp = `import json, sys, collections
counts = collections.Counter(sys.argv[1:])
print(json.dumps({"words": sorted(counts), "n": sum(counts.values())}))
`

// capNetBindService is the vfs_cap_data (version 2) of `setcap cap_net_bind_service=ep`.
const capNetBindService = "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

func TestE2ESlim(t *testing.T) {
	needRoot(t)
	needTools(t, "umoci", "skopeo")
	tree, err := debtree.Make("amd64", "jq", "dash", "coreutils", "base-passwd", "python3")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	layout := umociLayout(t, dir, tree, map[string]string{"app/app.py": slimApp, "data/seed.json": `{"seed": 1}` + "\n"})
	// A third layer gives jq a file capability (cap_net_bind_service=ep), which its slim image keeps.
	umociAddLayer(t, layout, "root", "root", nil, map[string]string{"/usr/bin/jq": capNetBindService})
	tool := umociTool(t)
	tool("umoci", "config", "--image", layout+":root", "--tag", "jq", "--config.entrypoint", "/usr/bin/jq",
		"--config.cmd", "-c", "--config.cmd", ".", "--config.label", "app=jq", "--config.exposedports", "8080/tcp",
		"--config.env", "FOO=bar", "--config.volume", "/data", "--config.stopsignal", "SIGINT")
	tool("umoci", "config", "--image", layout+":root", "--tag", "shell", "--config.entrypoint", "/bin/sh",
		"--config.entrypoint", "-c", "--config.cmd", "exec jq -n '2+2' && true")
	tool("umoci", "config", "--image", layout+":root", "--tag", "python", "--config.workingdir", "/app",
		"--config.cmd", "python3", "--config.cmd", "app.py")
	before := treeSnapshot(t, layout)

	podman := podmanRunner(t)
	for _, c := range []struct {
		tag  string
		argv []string // run in the slim root
		want string
		// podman runs the image's own command with these arguments (none: its Cmd), printing podmanWant
		podmanArgs []string
		podmanWant string
	}{
		{"jq", []string{"/usr/bin/jq", "-c", ".seed", "/data/seed.json"}, "1\n", []string{"-c", ".seed", "/data/seed.json"}, "1\n"},
		{"shell", []string{"/bin/sh", "-c", "exec jq -n '2+2' && true"}, "4\n", nil, "4\n"},
		{"python", []string{"/usr/bin/python3", "/app/app.py", "b", "a", "b"}, `{"words": ["a", "b"], "n": 3}` + "\n", nil, `{"words": [], "n": 0}` + "\n"},
	} {
		t.Run(c.tag, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "slim")
			stdout, stderr := slimOK(t, "slim", "--certs", "never", "oci:"+layout+":"+c.tag, "-o", "oci:"+out+":latest")
			digest := strings.TrimSpace(stdout)
			if again := buildDigestOf(t, "slim", "--certs", "never", "oci:"+layout+":"+c.tag, "-o", "oci:"+filepath.Join(t.TempDir(), "again")); again != digest {
				t.Errorf("slimming twice gave %s, then %s", digest, again)
			}
			_, srcCfg := skopeoInspect(t, "oci:"+layout+":"+c.tag)
			_, cfg := skopeoInspect(t, "oci:"+out+":latest")
			if !slices.Equal(cfg.Config.Entrypoint, srcCfg.Config.Entrypoint) || !slices.Equal(cfg.Config.Cmd, srcCfg.Config.Cmd) ||
				cfg.Config.WorkingDir != srcCfg.Config.WorkingDir || !slices.Equal(cfg.Config.Env, srcCfg.Config.Env) ||
				len(cfg.Config.ExposedPorts) != len(srcCfg.Config.ExposedPorts) || len(cfg.Config.Volumes) != len(srcCfg.Config.Volumes) ||
				cfg.Config.StopSignal != srcCfg.Config.StopSignal || cfg.Config.Labels["app"] != srcCfg.Config.Labels["app"] {
				t.Errorf("the config changed:\n  source %+v\n  slim   %+v", srcCfg.Config, cfg.Config)
			}
			if len(cfg.History) != 1 || !strings.HasPrefix(cfg.History[0].CreatedBy, "scratchpack slim sha256:") {
				t.Errorf("history %+v", cfg.History)
			}
			var manifest struct{ Annotations map[string]string }
			if err := json.Unmarshal([]byte(hostTool(t, "skopeo", "inspect", "--raw", "oci:"+out+":latest")), &manifest); err != nil {
				t.Fatal(err)
			}
			src := strings.TrimSpace(hostTool(t, "skopeo", "inspect", "--format", "{{.Digest}}", "oci:"+layout+":"+c.tag))
			if manifest.Annotations["dev.scratchpack.slim.source.digest"] != src {
				t.Errorf("annotations %v, want the source digest %s", manifest.Annotations, src)
			}
			for _, want := range []string{"layer 1/3 sha256:", "layer 2/3 sha256:", "layer 3/3 sha256:", "written by the rules:"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("slim's report has no %q:\n%s", want, stderr)
				}
			}
			b, _ := umociUnpack(t, out+":latest")
			root := filepath.Join(b, "rootfs")
			if got := mustRunInRoot(t, root, nil, c.argv...); got != c.want {
				t.Errorf("the workload printed %q, want %q", got, c.want)
			}
			if podman != nil {
				got, err := podman(append([]string{"run", "--rm", "--network", "host", "oci:" + out + ":latest"}, c.podmanArgs...)...)
				if err != nil || got != c.podmanWant {
					t.Errorf("podman ran the slim image: %q, %v; want %q", got, err, c.podmanWant)
				}
			}
			if c.tag != "python" {
				buf := make([]byte, 64)
				n, err := syscall.Getxattr(filepath.Join(root, "usr/bin/jq"), "security.capability", buf)
				if err != nil || string(buf[:n]) != capNetBindService {
					t.Errorf("the slim image's jq has capabilities %x (%v), want %x", buf[:max(n, 0)], err, capNetBindService)
				}
			}
			var kept, all int64
			filepath.Walk(root, func(_ string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					kept += fi.Size()
				}
				return nil
			})
			filepath.Walk(tree, func(_ string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					all += fi.Size()
				}
				return nil
			})
			t.Logf("%s: the slim root holds %d of the source's %d bytes (%.1f%%)", c.tag, kept, all, 100*float64(kept)/float64(all))
			if kept*2 > all {
				t.Errorf("%s: the slim root holds %d of %d bytes: not a small part", c.tag, kept, all)
			}
		})
	}
	if after := treeSnapshot(t, layout); len(after) != len(before) {
		t.Errorf("slim changed the source layout (%d paths, then %d)", len(before), len(after))
	}
	if code, _, stderr := scratchpack(t, "slim", "oci:"+layout+":nosuchtag", "-o", "oci:"+filepath.Join(dir, "x")); code == 0 || !strings.Contains(stderr, "nosuchtag") {
		t.Errorf("a missing tag: exit %d, %s", code, stderr)
	}
	bad := filepath.Join(dir, "bad.tar")
	if err := os.WriteFile(bad, []byte("not an archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := scratchpack(t, "slim", "docker-archive:"+bad, "-o", "oci:"+filepath.Join(dir, "x")); code != 1 || !strings.Contains(stderr, bad) || strings.Contains(stderr, "panic") {
		t.Errorf("an unreadable source: exit %d, %s", code, stderr)
	}
	// An existing output is not replaced without --force, and stays as it was.
	existing := filepath.Join(dir, "existing")
	buildDigestOf(t, "slim", "--certs", "never", "oci:"+layout+":jq", "-o", "oci:"+existing+":latest")
	snap := treeSnapshot(t, existing)
	if code, _, stderr := scratchpack(t, "slim", "--certs", "never", "oci:"+layout+":shell", "-o", "oci:"+existing+":latest"); code == 0 || !strings.Contains(stderr, "--force") {
		t.Errorf("slim over an existing output: exit %d, %s", code, stderr)
	}
	if !maps.Equal(snap, treeSnapshot(t, existing)) {
		t.Error("the refused slim changed the existing output")
	}
}

// slimOK runs scratchpack with args (a slim command) and fails t unless it exits 0.
func slimOK(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	code, stdout, stderr := scratchpack(t, args...)
	if code != 0 {
		t.Fatalf("scratchpack %q: exit %d\n%s", args, code, stderr)
	}
	return stdout, stderr
}

// buildDigestOf runs a scratchpack command that prints one digest.
func buildDigestOf(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := scratchpack(t, args...)
	if code != 0 || !strings.HasPrefix(stdout, "sha256:") {
		t.Fatalf("scratchpack %q: exit %d, %q\n%s", args, code, stdout, stderr)
	}
	return strings.TrimSpace(stdout)
}

// startInRoot starts argv inside root as runInRoot does (a private mount namespace with /dev and /proc),
// in the background; the returned stop kills it and waits (once, however often it is called).
func startInRoot(t *testing.T, root string, argv ...string) (stop func()) {
	t.Helper()
	for _, d := range []string{"dev", "proc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	mountBin, _ := exec.LookPath("mount")
	script := `set -e
"$MOUNT" --rbind /dev "$ROOT/dev"
"$MOUNT" -t proc proc "$ROOT/proc"
exec "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--fork", "--kill-child", "--", "/bin/sh", "-c", script, "sh", self}, argv...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "MOUNT=" + mountBin, "ROOT=" + root, chrootRootVar + "=" + root,
		chrootEnvVar + `=["PATH=/usr/bin:/bin"]`, chrootUserVar + "="}
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
			if t.Failed() {
				t.Logf("%v in %s printed:\n%s", argv, root, logs.String())
			}
		})
	}
}

// redisRoundTrip sends commands to a Redis server on addr, one at a time, and returns the replies' first lines.
func redisRoundTrip(t *testing.T, addr string, cmds ...string) []string {
	t.Helper()
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if conn, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no Redis server on %s: %v", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	var out []string
	for _, c := range cmds {
		if _, err := fmt.Fprintf(conn, "%s\r\n", c); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "$") && line != "$-1" { // a bulk string: its value is the next line
			v, _ := r.ReadString('\n')
			line = strings.TrimRight(v, "\r\n")
		}
		out = append(out, line)
	}
	return out
}

// TestE2ESlimRedis: redis-server started by a shell-form CMD. The slim image keeps the shell and the server
// its line names, and the server answers over TCP.
func TestE2ESlimRedis(t *testing.T) {
	needRoot(t)
	needTools(t, "umoci", "unshare", "mount")
	tree, err := debtree.Make("amd64", "redis-server", "dash")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	layout := umociLayout(t, dir, tree, nil)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := strings.Cut(port, ":")
	line := "exec redis-server --port " + p + " --bind 127.0.0.1 --save '' --appendonly no"
	tool := umociTool(t)
	tool("umoci", "config", "--image", layout+":root", "--tag", "redis", "--config.cmd", "/bin/sh", "--config.cmd", "-c", "--config.cmd", line)

	out := filepath.Join(dir, "slim")
	_, stderr := slimOK(t, "slim", "--certs", "never", "oci:"+layout+":redis", "-o", "oci:"+out+":latest")
	if !strings.Contains(stderr, "kept /bin/sh /usr/bin/redis-server:") {
		t.Errorf("slim did not say it kept the shell and the server:\n%s", stderr)
	}
	b, rc := umociUnpack(t, out+":latest")
	if !slices.Equal(rc.Process.Args, []string{"/bin/sh", "-c", line}) {
		t.Errorf("the slim image runs %q", rc.Process.Args)
	}
	ratio := sizeRatio(t, filepath.Join(b, "rootfs"), tree)
	if ratio > 0.5 {
		t.Errorf("the slim root holds %.1f%% of the source's bytes", 100*ratio)
	}
	stop := startInRoot(t, filepath.Join(b, "rootfs"), rc.Process.Args...)
	defer stop()
	got := redisRoundTrip(t, "127.0.0.1:"+p, "PING", "SET greeting slim", "GET greeting")
	if want := []string{"+PONG", "+OK", "slim"}; !slices.Equal(got, want) {
		t.Errorf("redis answered %q, want %q", got, want)
	}
	stop()
	if podman := podmanRunner(t); podman != nil {
		stop := podmanStart(t, podman, "oci:"+out+":latest")
		defer stop()
		got := redisRoundTrip(t, "127.0.0.1:"+p, "PING", "SET greeting podman", "GET greeting")
		if want := []string{"+PONG", "+OK", "podman"}; !slices.Equal(got, want) {
			t.Errorf("redis under podman answered %q, want %q", got, want)
		}
	}
}

// umociTool runs a tool and fails t unless it exits 0.
func umociTool(t *testing.T) func(name string, args ...string) {
	return func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %q: %v\n%s", name, args, err, out)
		}
	}
}

// umociLayout packs tree into an OCI layout under dir with umoci, tagged root, as an image made by other
// tools; extra files (path inside the root -> content) go into a second layer. It returns the layout's path.
func umociLayout(t *testing.T, dir, tree string, extra map[string]string) string {
	t.Helper()
	tool := umociTool(t)
	layout, bundle := filepath.Join(dir, "oci"), filepath.Join(dir, "bundle")
	tool("umoci", "init", "--layout", layout)
	tool("umoci", "new", "--image", layout+":base")
	tool("umoci", "unpack", "--image", layout+":base", bundle)
	tool("cp", "-a", tree+"/.", filepath.Join(bundle, "rootfs")+"/")
	tool("umoci", "repack", "--image", layout+":root", bundle)
	if extra != nil {
		umociAddLayer(t, layout, "root", "root", extra, nil)
	}
	return layout
}

// umociAddLayer adds a layer to the image tagged from, tagging the result to: files (path inside the root ->
// content; a #! script is executable) and file capabilities (path -> raw security.capability) set on files
// of the image.
func umociAddLayer(t *testing.T, layout, from, to string, files, caps map[string]string) {
	t.Helper()
	tool := umociTool(t)
	bundle := filepath.Join(t.TempDir(), "bundle")
	tool("umoci", "unpack", "--image", layout+":"+from, bundle)
	for p, data := range files {
		f := filepath.Join(bundle, "rootfs", p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(data, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(f, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range caps {
		f := filepath.Join(bundle, "rootfs", p)
		if err := syscall.Setxattr(f, "security.capability", []byte(c), 0); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		os.Chtimes(f, now, now) // so that umoci sees the file changed
	}
	tool("umoci", "repack", "--image", layout+":"+to, bundle)
}

// TestE2ESlimNginx: nginx from a Debian 12 image whose packages were installed (mmdebstrap's minbase
// variant: maintainer scripts ran, so the image has the dpkg database, www-data and the enabled-site links
// an image of nginx has), serving its default site with --keep of the docroot. The nginx rule follows the
// configuration's include and load_module lines; the slim image answers HTTP as the source would.
func TestE2ESlimNginx(t *testing.T) {
	dir := t.TempDir()
	layout, tree := nginxImage(t, dir)
	umociTool(t)("umoci", "config", "--image", layout+":root", "--tag", "nginx", "--config.cmd", "nginx", "--config.cmd", "-g",
		"--config.cmd", "daemon off;", "--config.exposedports", "80/tcp", "--config.stopsignal", "SIGQUIT")

	out := filepath.Join(dir, "slim")
	args := []string{"slim", "--certs", "never", "--keep", "/var/www/html", "oci:" + layout + ":nginx"}
	stdout, stderr := slimOK(t, append(args, "-o", "oci:"+out+":latest")...)
	for _, want := range []string{"nginx: /usr/sbin/nginx: kept", "serves /var/www/html: not kept"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("slim's notes have no %q:\n%s", want, stderr)
		}
	}
	if again := buildDigestOf(t, append(args, "-o", "oci:"+filepath.Join(dir, "again"))...); again != strings.TrimSpace(stdout) {
		t.Errorf("slimming twice gave %s, then %s", strings.TrimSpace(stdout), again)
	}
	b, rc := umociUnpack(t, out+":latest")
	if !slices.Equal(rc.Process.Args, []string{"nginx", "-g", "daemon off;"}) {
		t.Errorf("the slim image runs %q", rc.Process.Args)
	}
	root := filepath.Join(b, "rootfs")
	for _, p := range []string{"etc/nginx/sites-enabled/default", "etc/nginx/modules-enabled/50-mod-http-echo.conf",
		"usr/lib/nginx/modules/ngx_http_echo_module.so", "var/lib/nginx", "var/log/nginx"} {
		if _, err := resolveInRoot(root, "/"+p); err != nil {
			t.Errorf("the slim image lacks what nginx's configuration names: %s: %v", p, err)
		}
	}
	ratio := sizeRatio(t, root, tree)
	if ratio > 0.2 {
		t.Errorf("the slim root holds %.1f%% of the source's bytes", 100*ratio)
	}
	stop := startInRoot(t, root, "/usr/sbin/nginx", "-g", "daemon off;")
	defer stop()
	body := httpGet(t, "http://127.0.0.1:80/")
	if !strings.Contains(body, "Welcome to nginx!") {
		t.Errorf("nginx served %q", body)
	}
	stop()
	if podman := podmanRunner(t); podman != nil {
		stop := podmanStart(t, podman, "oci:"+out+":latest")
		defer stop()
		if body := httpGet(t, "http://127.0.0.1:80/"); !strings.Contains(body, "Welcome to nginx!") {
			t.Errorf("nginx under podman served %q", body)
		}
	}
}

// nginxImage packs the installed Debian 12 root with nginx-light into an OCI layout under dir with umoci
// (tag root) and returns the layout and the root. It skips when port 80, where the default site listens, is
// taken.
func nginxImage(t *testing.T, dir string) (layout, tree string) {
	t.Helper()
	needRoot(t)
	needTools(t, "umoci", "unshare", "mount")
	if l, err := net.Listen("tcp", "127.0.0.1:80"); err != nil {
		t.Skipf("the default site listens on port 80, which is taken here: %v", err)
	} else {
		l.Close()
	}
	tree, err := debtree.MakeInstalled("nginx-light")
	if err != nil {
		t.Skip(err)
	}
	return umociLayout(t, dir, tree, nil), tree
}

// sizeRatio is the bytes of the regular files under root as a part of those under source; it logs both.
func sizeRatio(t *testing.T, root, source string) float64 {
	t.Helper()
	size := func(dir string) int64 {
		var n int64
		filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				n += fi.Size()
			}
			return nil
		})
		return n
	}
	kept, all := size(root), size(source)
	ratio := float64(kept) / float64(max(all, 1))
	t.Logf("the slim root holds %.1f MB of the source's %.1f MB (%.1f%%)", float64(kept)/1e6, float64(all)/1e6, 100*ratio)
	return ratio
}

// httpGet fetches url, retrying for a few seconds while the server starts, and returns the body.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var resp *http.Response
		if resp, err = client.Get(url); err == nil {
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
			}
			return string(data)
		}
	}
	t.Fatalf("GET %s: %v", url, err)
	return ""
}

// podmanRunner runs podman as these tests can here: vfs storage and runc under a root of the test's own,
// the host's network, and no default ulimits (podman raises RLIMIT_NOFILE and RLIMIT_NPROC, which needs
// CAP_SYS_RESOURCE, which a sandboxed machine may not grant). It returns nil when podman or runc is missing.
func podmanRunner(t *testing.T) func(args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		return nil
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return nil
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "containers.conf")
	if err := os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) (string, error) {
		for i, a := range args {
			// podman names an oci: image by its path, which must then be lowercase: a link of ours is.
			if p, ok := strings.CutPrefix(a, "oci:"); ok {
				link, err := os.MkdirTemp("", "sp-podman-")
				if err != nil {
					return "", err
				}
				t.Cleanup(func() { os.RemoveAll(link) })
				dir, tag, _ := strings.Cut(p, ":")
				if err := os.Symlink(dir, filepath.Join(link, "image")); err != nil {
					return "", err
				}
				args = slices.Clone(args)
				args[i] = "oci:" + filepath.Join(link, "image") + ":" + tag
			}
		}
		base := []string{"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs", "--runtime", "runc"}
		cmd := exec.Command("podman", append(base, args...)...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return stdout.String(), fmt.Errorf("podman %q: %v\n%s", args, err, stderr.String())
		}
		return stdout.String(), nil
	}
}

// podmanStart starts an image's own command in the background with podman; stop removes the container.
func podmanStart(t *testing.T, podman func(...string) (string, error), image string) (stop func()) {
	t.Helper()
	name := fmt.Sprintf("slim-%d", time.Now().UnixNano())
	if _, err := podman("run", "-d", "--network", "host", "--name", name, image); err != nil {
		t.Fatal(err)
	}
	return func() {
		if t.Failed() {
			logs, _ := podman("logs", name)
			t.Logf("the container printed:\n%s", logs)
		}
		podman("rm", "-f", "-t", "1", name)
	}
}

const sqliteEntrypoint = `#!/bin/sh
# docker-entrypoint.sh: make the database on first start, then hand over to sqlite3.
set -e
if [ ! -f /data/app.db ]; then
	sqlite3 /data/app.db "create table greetings(text); insert into greetings values ('hello from slim');"
fi
exec sqlite3 -batch /data/app.db "$@"
`

// TestE2ESlimSQLite: an image whose entrypoint is a docker-entrypoint.sh script that execs sqlite3 on a
// database in a volume. slim follows the script's command words to the shell and sqlite3; the slim image
// makes and queries its database.
func TestE2ESlimSQLite(t *testing.T) {
	needRoot(t)
	needTools(t, "umoci", "unshare", "mount")
	tree, err := debtree.Make("amd64", "sqlite3", "dash", "coreutils")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	layout := umociLayout(t, dir, tree, nil)
	umociAddLayer(t, layout, "root", "root", map[string]string{"usr/local/bin/docker-entrypoint.sh": sqliteEntrypoint,
		"data/README": "the database's volume\n", "usr/local/bin/run-args.sh": "#!/bin/sh\nset -e\nexec \"$@\"\n"}, nil)
	umociTool(t)("umoci", "config", "--image", layout+":root", "--tag", "sqlite", "--config.entrypoint", "docker-entrypoint.sh",
		"--config.cmd", "select text from greetings;", "--config.volume", "/data", "--config.workingdir", "/data")
	out := filepath.Join(dir, "slim")
	_, stderr := slimOK(t, "slim", "--certs", "never", "oci:"+layout+":sqlite", "-o", "oci:"+out+":latest")
	if !strings.Contains(stderr, "kept /usr/local/bin/docker-entrypoint.sh /usr/bin/sqlite3:") {
		t.Errorf("slim did not follow the entrypoint script to sqlite3:\n%s", stderr)
	}
	b, rc := umociUnpack(t, out+":latest")
	root := filepath.Join(b, "rootfs")
	if got := mustRunInRoot(t, root, nil, append([]string{"/usr/local/bin/docker-entrypoint.sh"}, rc.Process.Args[1:]...)...); got != "hello from slim\n" {
		t.Errorf("the slim image printed %q", got)
	}
	ratio := sizeRatio(t, root, tree)
	if ratio > 0.2 {
		t.Errorf("the slim root holds %.1f%% of the source's bytes", 100*ratio)
	}
	if podman := podmanRunner(t); podman != nil {
		got, err := podman("run", "--rm", "--network", "none", "oci:"+out+":latest")
		if err != nil || got != "hello from slim\n" {
			t.Errorf("podman ran the slim image: %q, %v", got, err)
		}
	}

	// An entrypoint that runs its arguments (exec "$@"): the command's first word is the program.
	umociTool(t)("umoci", "config", "--image", layout+":root", "--tag", "args", "--config.entrypoint", "run-args.sh",
		"--config.cmd", "sqlite3", "--config.cmd", ":memory:", "--config.cmd", "select 6*7;")
	args := filepath.Join(dir, "args")
	if _, stderr := slimOK(t, "slim", "--certs", "never", "oci:"+layout+":args", "-o", "oci:"+args+":latest"); !strings.Contains(stderr, "kept /usr/local/bin/run-args.sh /usr/bin/sqlite3:") {
		t.Errorf("slim did not take the command run by exec \"$@\":\n%s", stderr)
	}
	b, _ = umociUnpack(t, args+":latest")
	if got := mustRunInRoot(t, filepath.Join(b, "rootfs"), nil, "/usr/local/bin/run-args.sh", "sqlite3", ":memory:", "select 6*7;"); got != "42\n" {
		t.Errorf("the exec \"$@\" image printed %q", got)
	}
}

// TestE2ESlimPlatforms: a multi-platform source (Debian 12 jq images for amd64 and arm64, packed by umoci,
// under one index) slims into an index of both platforms by default, each image its own platform's, and
// into one image with --platform; an output that holds one image refuses the index.
func TestE2ESlimPlatforms(t *testing.T) {
	needRoot(t)
	needTools(t, "umoci", "skopeo", "unshare", "mount")
	qemu, err := debtree.QEMU("arm64")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		tree, err := debtree.Make(arch, "jq", "dash")
		if err != nil {
			t.Skip(err)
		}
		src := umociLayout(t, filepath.Join(dir, arch), tree, nil)
		umociTool(t)("umoci", "config", "--image", src+":root", "--tag", "jq", "--architecture", arch,
			"--config.entrypoint", "/usr/bin/jq", "--config.cmd", "-n", "--config.cmd", "2+2")
		img, err := rootfs.LoadImage(context.Background(), "oci:"+src+":jq", rootfs.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	multi := filepath.Join(dir, "multi")
	lp, err := layout.Write(multi, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(mutate.AppendManifests(empty.Index, adds...), layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "jq"})); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, "slim")
	stdout, stderr := slimOK(t, "slim", "--certs", "never", "oci:"+multi+":jq", "-o", "oci:"+out+":latest")
	for _, want := range []string{"linux/amd64: kept /usr/bin/jq:", "linux/arm64: kept /usr/bin/jq:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("slim's report has no %q:\n%s", want, stderr)
		}
	}
	var index struct {
		MediaType   string
		Manifests   []v1.Descriptor
		Annotations map[string]string
	}
	if err := json.Unmarshal([]byte(hostTool(t, "skopeo", "inspect", "--raw", "oci:"+out+":latest")), &index); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range index.Manifests {
		got = append(got, m.Platform.String())
	}
	if !slices.Equal(got, []string{"linux/amd64", "linux/arm64"}) || index.Annotations["dev.scratchpack.slim.source.digest"] == "" {
		t.Fatalf("the slim index: platforms %q, annotations %v (stdout %s)", got, index.Annotations, stdout)
	}
	for _, c := range []struct{ arch, qemu string }{{"amd64", ""}, {"arm64", qemu}} {
		single := filepath.Join(dir, "single-"+c.arch)
		hostTool(t, "skopeo", "copy", "--override-arch", c.arch, "oci:"+out+":latest", "oci:"+single+":x")
		b, _ := umociUnpack(t, single+":x")
		root := filepath.Join(b, "rootfs")
		if got := mustRunInRoot(t, root, nil, underQEMU(t, root, c.qemu, "/usr/bin/jq", "-n", "2+2")...); got != "4\n" {
			t.Errorf("%s: jq of the slim image printed %q", c.arch, got)
		}
	}

	one := filepath.Join(dir, "one")
	buildDigestOf(t, "slim", "--certs", "never", "--platform", "linux/arm64", "oci:"+multi+":jq", "-o", "oci:"+one+":latest")
	if _, cfg := skopeoInspect(t, "oci:"+one+":latest"); cfg.Architecture != "arm64" {
		t.Errorf("--platform linux/arm64 gave an image for %s", cfg.Architecture)
	}
	code, _, stderr := scratchpack(t, "slim", "--certs", "never", "oci:"+multi+":jq", "-o", "dir:"+filepath.Join(dir, "tree"))
	if code == 0 || !strings.Contains(stderr, "--platform") {
		t.Errorf("a multi-platform source into a directory: exit %d, %s", code, stderr)
	}
}

// TestE2ESlimTrace: --trace runs the image's own program in the unpacked image, sandboxed. nginx without
// --keep: the probe (curl, from the host, in the workload's network namespace) fetches the default site,
// so the page it served stays and the slim image serves it. And a workload that reports where it runs:
// PID 1, as the image's User, with only a loopback interface, its files' owners shifted out of the host's
// accounts.
func TestE2ESlimTrace(t *testing.T) {
	needTools(t, "curl")
	dir := t.TempDir()
	layout, _ := nginxImage(t, dir)
	tool := umociTool(t)
	tool("umoci", "config", "--image", layout+":root", "--tag", "nginx", "--config.cmd", "nginx", "--config.cmd", "-g", "--config.cmd", "daemon off;")
	tool("umoci", "config", "--image", layout+":root", "--tag", "nobody", "--config.user", "nobody", "--config.workingdir", "/tmp",
		"--config.cmd", "/bin/sh", "--config.cmd", "-c", "--config.cmd",
		`echo "pid=$$ uid=$(id -u) gid=$(id -g) pwd=$(pwd) host=$(cat /proc/sys/kernel/hostname)"; cat /proc/net/dev; stat -c 'owner=%u' /etc/passwd`)

	out := filepath.Join(dir, "slim")
	_, stderr := slimOK(t, "slim", "--certs", "never", "--trace", "--trace-probe", "curl -sS http://127.0.0.1/ | grep -o 'Welcome to nginx!'",
		"oci:"+layout+":nginx", "-o", "oci:"+out+":latest")
	if !strings.Contains(stderr, "Welcome to nginx!") || !strings.Contains(stderr, "trace of nginx -g daemon off;") {
		t.Errorf("the probe did not fetch the page, or the trace said nothing:\n%s", stderr)
	}
	b, _ := umociUnpack(t, out+":latest")
	root := filepath.Join(b, "rootfs")
	if _, err := os.Stat(filepath.Join(root, "var/www/html/index.nginx-debian.html")); err != nil {
		t.Errorf("the page the trace served is not in the slim image: %v", err)
	}
	stop := startInRoot(t, root, "/usr/sbin/nginx", "-g", "daemon off;")
	defer stop()
	if body := httpGet(t, "http://127.0.0.1:80/"); !strings.Contains(body, "Welcome to nginx!") {
		t.Errorf("the traced slim nginx served %q", body)
	}
	stop()

	_, stderr = slimOK(t, "slim", "--certs", "never", "--trace", "oci:"+layout+":nobody", "-o", "oci:"+filepath.Join(dir, "nobody")+":latest")
	for _, want := range []string{"pid=1 uid=65534 gid=65534 pwd=/tmp host=scratchpack", "lo:", "owner=0"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the traced workload did not print %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "eth") || strings.Contains(stderr, "ens") {
		t.Errorf("the traced workload sees the host's interfaces:\n%s", stderr)
	}
	if code, _, stderr := scratchpack(t, "slim", "--trace-probe", "true", "oci:"+layout+":nginx", "-o", "oci:"+filepath.Join(dir, "x")); code != 2 || !strings.Contains(stderr, "give --trace too") {
		t.Errorf("--trace-probe alone: exit %d, %s", code, stderr)
	}
}
