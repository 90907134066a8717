package main

// End-to-end tests of `scratchpack build`: every output is run, unpacked or inspected with the tools people
// use (a chroot in a private mount namespace, curl, skopeo, umoci, Debian's docker-registry, cpio), and what
// the programs print inside is asserted.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/scratchpack/scratchpack/collector"
)

const (
	interp = "/lib64/ld-linux-x86-64.so.2"
	libc   = "/lib/x86_64-linux-gnu/libc.so.6"
)

func TestE2EShell(t *testing.T) {
	needRoot(t)
	root := filepath.Join(t.TempDir(), "root")
	if got := buildOK(t, "/bin/sh", "/bin/bash", "-o", "dir:"+root); got != root {
		t.Errorf("stdout %q, want the path %q", got, root)
	}
	if got := mustRunInRoot(t, root, nil, "/bin/sh", "-c", "echo hello; echo $((6*7))"); got != "hello\n42\n" {
		t.Errorf("/bin/sh printed %q, want \"hello\\n42\\n\"", got)
	}
	// A here-string needs a temporary file or a pipe, [[ ]] and ${x^^} are bash's own.
	script := `read -r a b <<< "x y"; [[ $b == y && $a =~ ^x$ ]] && echo "${a^^}-$b ${BASH_VERSINFO[0]}"`
	got := mustRunInRoot(t, root, nil, "/bin/bash", "-c", script)
	if !strings.HasPrefix(got, "X-y ") || !strings.HasSuffix(got, "\n") {
		t.Errorf("bash printed %q, want \"X-y <major version>\\n\"", got)
	}
}

// TestE2ERunInRootLeavesNothing checks the helper the other tests rely on: the program sees /dev, a proc and
// exactly the environment given, has no standard input, and afterwards nothing is mounted and the tree is as
// built.
func TestE2ERunInRootLeavesNothing(t *testing.T) {
	needRoot(t)
	root := filepath.Join(t.TempDir(), "root")
	buildOK(t, "/bin/sh", "-o", "dir:"+root)
	before := treeSnapshot(t, root)

	script := `while read -r l; do echo "$l"; done < /proc/self/mountinfo
[ -c /dev/null ] && echo "dev: ok"
echo "env: $PATH|${HOME-unset}|$FOO|${` + chrootRootVar + `-unset}"
read -r line; echo "stdin: $?"`
	out := mustRunInRoot(t, root, []string{"FOO=bar baz"}, "/bin/sh", "-c", script)
	for _, want := range []string{" /proc ", " /dev ", "dev: ok\n", "env: /usr/bin:/bin|unset|bar baz|unset\n", "stdin: 1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("inside the root, output lacks %q:\n%s", want, out)
		}
	}

	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, root) {
			t.Errorf("still mounted after the run: %s", line)
		}
	}
	if diff := cmp.Diff(before, treeSnapshot(t, root)); diff != "" {
		t.Errorf("the run changed the root (-before +after):\n%s", diff)
	}

	// A failing program is an error with its exit status, and its output still comes back.
	stdout, stderr, err := runInRoot(t, root, nil, "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || stdout != "out\n" || stderr != "err\n" {
		t.Errorf("exit 3: got err %v, stdout %q, stderr %q", err, stdout, stderr)
	}
}

// nssRun runs the nss fixture (argv) in root and returns its output lines by kind ("passwd", "group",
// "host"), each without the kind.
func nssRun(t *testing.T, root string, env []string, argv ...string) map[string][]string {
	t.Helper()
	out := mustRunInRoot(t, root, env, argv...)
	got := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		kind, rest, _ := strings.Cut(line, " ")
		got[kind] = append(got[kind], rest)
	}
	return got
}

// appAccount is the uid and home a built image gives --user app: the root's own entry when it has one, else
// a new account collector.NonrootID (65532) at /home/app.
func appAccount(t *testing.T) (uid, home string) {
	t.Helper()
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Split(line, ":"); len(f) >= 6 && f[0] == "app" {
			return f[2], f[5]
		}
	}
	return strconv.Itoa(collector.NonrootID), "/home/app"
}

func TestE2ENSS(t *testing.T) {
	needRoot(t)
	prog := filepath.Join(fixtures(t), "nss", "prog")
	root := filepath.Join(t.TempDir(), "root")
	buildOK(t, prog, "--user", "app", "-o", "dir:"+root)
	for _, f := range []string{"/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/hosts"} {
		if st, err := os.Lstat(filepath.Join(root, f)); err != nil || !st.Mode().IsRegular() {
			t.Errorf("%s is not a regular file in the root: %v", f, err)
		}
	}
	if st, err := os.Lstat(filepath.Join(root, "tmp")); err != nil || st.Mode()&(fs.ModeSticky|fs.ModePerm) != fs.ModeSticky|0o777 {
		t.Errorf("/tmp: %v, want a directory with mode 1777 (err %v)", st, err)
	}

	got := nssRun(t, root, nil, prog, "app")
	uid, home := appAccount(t)
	var pw []string
	for _, l := range got["passwd"] {
		name, fields, _ := strings.Cut(l, " ")
		pw = append(pw, name+" "+strings.Join(strings.Fields(fields)[:3], " "))
	}
	want := []string{"root uid=0 gid=0 home=/root", fmt.Sprintf("app uid=%s gid=%s home=%s", uid, uid, home)}
	if diff := cmp.Diff(want, pw); diff != "" {
		t.Errorf("getpwnam answers in the image (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"root gid=0"}, got["group"]); diff != "" {
		t.Errorf("getgrnam answers in the image (-want +got):\n%s", diff)
	}
	if len(got["host"]) == 0 {
		t.Errorf("getaddrinfo(localhost) printed no address: %v", got)
	}
	for _, h := range got["host"] {
		if h != "localhost 127.0.0.1" && h != "localhost ::1" {
			t.Errorf("localhost resolved to %q, want 127.0.0.1 or ::1", h)
		}
	}

	// The answers come from the image's files, not from anything of the host's: a name only the image's
	// /etc/hosts knows resolves, and without the image's nsswitch.conf and hosts nothing does.
	hostsFile := filepath.Join(root, "etc", "hosts")
	hosts, err := os.ReadFile(hostsFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hostsFile, append(hosts, "192.0.2.7\tonly-in-the-image\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := nssRun(t, root, nil, prog, "app", "only-in-the-image"); !slices.Equal(got["host"], []string{"only-in-the-image 192.0.2.7"}) {
		t.Errorf("a name from the image's /etc/hosts resolved to %v", got["host"])
	}
	if stdout, stderr, err := runInRoot(t, root, nil, prog, "nosuchuser"); err == nil || !strings.Contains(stderr, `getpwnam("nosuchuser"): not found`) {
		t.Errorf("an unknown user: err %v, stdout %q, stderr %q; want a failure naming it", err, stdout, stderr)
	}
}

// curlRoot builds /usr/bin/curl into a directory (with extra build arguments) and returns it.
func curlRoot(t *testing.T, args ...string) string {
	t.Helper()
	needTools(t, "curl")
	root := filepath.Join(t.TempDir(), "root")
	buildOK(t, append([]string{"/usr/bin/curl", "-o", "dir:" + root}, args...)...)
	return root
}

func TestE2ETLSClient(t *testing.T) {
	needRoot(t)
	const body = "hello from a TLS server, through a FROM-scratch curl\n"
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
	srv.StartTLS()
	defer srv.Close()
	certFile := filepath.Join(t.TempDir(), "test.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}

	root := curlRoot(t, "--add", certFile+":/ca/test.pem")
	// The chroot shares the host's network namespace, so the server on loopback is reachable.
	got := mustRunInRoot(t, root, nil, "/usr/bin/curl", "-sS", "--cacert", "/ca/test.pem", srv.URL+"/")
	if got != body {
		t.Errorf("curl printed %q, want %q", got, body)
	}
	// Without the test CA the same request fails verification: TLS really is checked in there.
	if stdout, stderr, err := runInRoot(t, root, nil, "/usr/bin/curl", "-sS", srv.URL+"/"); err == nil {
		t.Errorf("curl accepted an unknown CA: stdout %q, stderr %q", stdout, stderr)
	}

	// --certs auto: curl's closure holds a TLS library, so the image has the system CA bundle.
	want, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("the host has no CA bundle: %v (install ca-certificates: run .ci/install-deps)", err)
	}
	bundle, err := resolveInRoot(root, "/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("--certs auto: %v", err)
	}
	if data, err := os.ReadFile(bundle); err != nil || !bytes.Equal(data, want) {
		t.Errorf("--certs auto: the image's CA bundle differs from the host's (err %v)", err)
	}

	t.Run("never", func(t *testing.T) {
		root := curlRoot(t, "--certs", "never")
		if _, err := os.Lstat(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("--certs never: /etc/ssl/certs/ca-certificates.crt is in the image (%v)", err)
		}
	})
}

// TestE2ELoaderFindsEveryFile runs the real loader in trace mode inside a built root: every object it maps
// must be found there, and be the same file it maps on the host.
func TestE2ELoaderFindsEveryFile(t *testing.T) {
	needRoot(t)
	root := curlRoot(t)
	out := mustRunInRoot(t, root, []string{"LD_TRACE_LOADED_OBJECTS=1"}, "/usr/bin/curl")
	if strings.Contains(out, "not found") {
		t.Fatalf("the loader inside the root misses a library:\n%s", out)
	}
	paths := tracePaths(out)
	if len(paths) < 3 {
		t.Fatalf("the trace lists too few objects (is it a trace?):\n%s", out)
	}
	for _, p := range paths {
		host, err := resolveInRoot(root, p)
		if err != nil {
			t.Errorf("the loader mapped %s, which is not in the built root: %v", p, err)
			continue
		}
		got, err := os.ReadFile(host)
		if err != nil {
			t.Error(err)
			continue
		}
		want, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s in the root differs from the host's", p)
		}
	}
	slices.Sort(paths)
	if diff := cmp.Diff(loaderList(t, "/usr/bin/curl"), slices.Compact(paths)); diff != "" {
		t.Errorf("the loader maps other paths inside the root than on the host (-host +root):\n%s", diff)
	}
	checkLoaderFindsAll(t, root, interp)
}

// skopeoInspect returns skopeo inspect's answer for ref, and the image config (skopeo inspect --config).
func skopeoInspect(t *testing.T, ref string, flags ...string) (inspect struct {
	Digest, Architecture, Os string
	Labels                   map[string]string
	Env                      []string
}, config v1.ConfigFile) {
	t.Helper()
	out := hostTool(t, "skopeo", append(append([]string{"inspect"}, flags...), ref)...)
	if err := json.Unmarshal([]byte(out), &inspect); err != nil {
		t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, out)
	}
	out = hostTool(t, "skopeo", append(append([]string{"inspect", "--config"}, flags...), ref)...)
	if err := json.Unmarshal([]byte(out), &config); err != nil {
		t.Fatalf("skopeo inspect --config %s: %v\n%s", ref, err, out)
	}
	return inspect, config
}

// runtimeConfig is the part of an OCI runtime config.json (what umoci unpack writes) the tests look at.
type runtimeConfig struct {
	Process struct {
		Args []string `json:"args"`
		Env  []string `json:"env"`
		Cwd  string   `json:"cwd"`
		User struct {
			UID uint32 `json:"uid"`
			GID uint32 `json:"gid"`
		} `json:"user"`
	} `json:"process"`
	Annotations map[string]string `json:"annotations"`
}

// umociUnpack unpacks the OCI layout image DIR:TAG into a new bundle directory and returns the bundle and its
// runtime config.
func umociUnpack(t *testing.T, image string) (string, runtimeConfig) {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle")
	hostTool(t, "umoci", "unpack", "--image", image, bundle)
	var cfg runtimeConfig
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatalf("umoci unpack wrote no runtime config: %v", err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%s/config.json: %v", bundle, err)
	}
	return bundle, cfg
}

func TestE2ERegistry(t *testing.T) {
	needRoot(t)
	needTools(t, "curl", "skopeo", "umoci")
	reg := startRegistry(t)
	ref := reg + "/scratchpack/curl:test"
	// A loopback registry speaks plain HTTP and needs no --insecure.
	digest := buildDigest(t, "/usr/bin/curl", "-o", "docker://"+ref)

	inspect, config := skopeoInspect(t, "docker://"+ref, "--tls-verify=false")
	if inspect.Digest != digest || inspect.Architecture != "amd64" || inspect.Os != "linux" {
		t.Errorf("skopeo inspect: digest %s, %s/%s; want %s (the build's stdout), linux/amd64", inspect.Digest, inspect.Os, inspect.Architecture, digest)
	}
	if diff := cmp.Diff([]string{"/usr/bin/curl"}, config.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint in the registry's config (-want +got):\n%s", diff)
	}

	layoutDir := filepath.Join(t.TempDir(), "oci")
	hostTool(t, "skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", "docker://"+ref, "oci:"+layoutDir+":test")
	bundle, _ := umociUnpack(t, layoutDir+":test")
	if got := mustRunInRoot(t, filepath.Join(bundle, "rootfs"), nil, "/usr/bin/curl", "--version"); !strings.HasPrefix(got, "curl ") {
		t.Errorf("curl --version in the pulled image printed %q", got)
	}
}

// ociImage opens the image tagged tag in the OCI layout dir (with tag "", its only image) and validates it.
func ociImage(t *testing.T, dir, tag string) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("reading the OCI layout %s: %v", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] != tag && (tag != "" || len(im.Manifests) != 1) {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("the image in %s is not valid: %v", dir, err)
		}
		return img
	}
	t.Fatalf("%s/index.json names no image tagged %q: %+v", dir, tag, im.Manifests)
	return nil
}

func TestE2EOCILayout(t *testing.T) {
	needRoot(t)
	needTools(t, "skopeo", "umoci")
	prog := filepath.Join(fixtures(t), "nss", "prog")
	dir := filepath.Join(t.TempDir(), "oci")
	digest := buildDigest(t, prog, "--entrypoint", prog, "--cmd", "app", "--env", "GREETING=hello world",
		"--user", "app", "--workdir", "/work", "--label", "org.example.test=yes", "-o", "oci:"+dir+":v1")

	img := ociImage(t, dir, "v1")
	if d, err := img.Digest(); err != nil || d.String() != digest {
		t.Errorf("the layout's image digest is %v (%v), stdout said %s", d, err, digest)
	}
	inspect, config := skopeoInspect(t, "oci:"+dir+":v1")
	if inspect.Digest != digest || inspect.Labels["org.example.test"] != "yes" || !slices.Contains(inspect.Env, "GREETING=hello world") {
		t.Errorf("skopeo inspect: digest %s, labels %v, env %v; want %s, org.example.test=yes, GREETING=hello world", inspect.Digest, inspect.Labels, inspect.Env, digest)
	}
	if config.Config.User != "app" || config.Config.WorkingDir != "/work" || config.Architecture != "amd64" || config.OS != "linux" {
		t.Errorf("image config: user %q, workdir %q, %s/%s; want app, /work, linux/amd64", config.Config.User, config.Config.WorkingDir, config.OS, config.Architecture)
	}

	bundle, rc := umociUnpack(t, dir+":v1")
	uid, home := appAccount(t)
	if diff := cmp.Diff([]string{prog, "app"}, rc.Process.Args); diff != "" {
		t.Errorf("process.args in the runtime config (entrypoint + cmd) (-want +got):\n%s", diff)
	}
	if !slices.Contains(rc.Process.Env, "GREETING=hello world") {
		t.Errorf("process.env %q lacks GREETING=hello world", rc.Process.Env)
	}
	if rc.Process.Cwd != "/work" {
		t.Errorf("process.cwd %q, want /work", rc.Process.Cwd)
	}
	if fmt.Sprint(rc.Process.User.UID) != uid {
		t.Errorf("umoci resolved --user app to uid %d through the image's /etc/passwd, want %s", rc.Process.User.UID, uid)
	}
	rootfs := filepath.Join(bundle, "rootfs")
	if st, err := os.Stat(filepath.Join(rootfs, "work")); err != nil || !st.IsDir() {
		t.Errorf("the workdir /work is not a directory in the image: %v", err)
	}
	var env []string
	for _, e := range rc.Process.Env {
		if !strings.HasPrefix(e, "PATH=") {
			env = append(env, e)
		}
	}
	got := nssRun(t, rootfs, env, rc.Process.Args...)
	if want := fmt.Sprintf("app uid=%s gid=%s home=%s", uid, uid, home); !slices.ContainsFunc(got["passwd"], func(l string) bool { return strings.HasPrefix(l, want+" ") }) {
		t.Errorf("the unpacked image's program printed %v, want a line %q", got, want)
	}
}

// dockerArchiveManifest reads manifest.json (docker save's format) and the named config from a tarball.
func dockerArchiveManifest(t *testing.T, file string) (manifest []struct {
	Config   string
	RepoTags []string
	Layers   []string
}, files map[string][]byte) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files = map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", file, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = data
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatalf("%s: manifest.json: %v", file, err)
	}
	return manifest, files
}

func TestE2EDockerArchive(t *testing.T) {
	needRoot(t)
	needTools(t, "skopeo", "umoci")
	hello := filepath.Join(fixtures(t), "hello")
	file := filepath.Join(t.TempDir(), "hello.tar")
	digest := buildDigest(t, hello, "-o", "docker-archive:"+file+":scratchpack/hello:1")

	manifest, files := dockerArchiveManifest(t, file)
	if len(manifest) != 1 {
		t.Fatalf("manifest.json holds %d images, want 1", len(manifest))
	}
	m := manifest[0]
	if diff := cmp.Diff([]string{"scratchpack/hello:1"}, m.RepoTags); diff != "" {
		t.Errorf("RepoTags (-want +got):\n%s", diff)
	}
	configData, ok := files[m.Config]
	if !ok {
		t.Fatalf("manifest.json names config %q, which is not in the tarball", m.Config)
	}
	configDigest := fmt.Sprintf("sha256:%x", sha256.Sum256(configData))
	// go-containerregistry names it sha256:HEX, docker save HEX.json: either way, after its digest.
	if name := strings.TrimSuffix(path.Base(m.Config), ".json"); name != configDigest && "sha256:"+name != configDigest {
		t.Errorf("config file %q is not named after its digest %s", m.Config, configDigest)
	}
	for _, l := range m.Layers {
		if _, ok := files[l]; !ok {
			t.Errorf("manifest.json names layer %q, which is not in the tarball", l)
		}
	}

	img, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		t.Fatalf("go-containerregistry cannot read the archive: %v", err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("the archive's image is not valid: %v", err)
	}

	inspect, config := skopeoInspect(t, "docker-archive:"+file)
	if inspect.Architecture != "amd64" || inspect.Os != "linux" {
		t.Errorf("skopeo inspect: %s/%s, want linux/amd64", inspect.Os, inspect.Architecture)
	}
	// A docker archive holds no manifest, only the config and the layers (skopeo and docker load each make up
	// their own manifest): what names it is the config digest, the image ID docker load reports.
	if digest != configDigest {
		t.Errorf("stdout said %s; the archive's config, its image ID, is %s (skopeo's made-up manifest is %s)",
			digest, configDigest, inspect.Digest)
	}
	rawConfig := hostTool(t, "skopeo", "inspect", "--config", "--raw", "docker-archive:"+file)
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(rawConfig))); got != configDigest {
		t.Errorf("skopeo reads a config with digest %s, manifest.json names %s", got, configDigest)
	}
	if diff := cmp.Diff([]string{hello}, config.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}

	// What docker load would get runs: copied to a layout and unpacked, the program says hello.
	layoutDir := filepath.Join(t.TempDir(), "oci")
	hostTool(t, "skopeo", "--insecure-policy", "copy", "docker-archive:"+file, "oci:"+layoutDir+":hello")
	bundle, rc := umociUnpack(t, layoutDir+":hello")
	if got := mustRunInRoot(t, filepath.Join(bundle, "rootfs"), nil, rc.Process.Args...); got != "Hello from a FROM-scratch image!\n" {
		t.Errorf("the unpacked archive's entrypoint printed %q", got)
	}
}

func TestE2EReproducible(t *testing.T) {
	prog := filepath.Join(fixtures(t), "nss", "prog")
	args := []string{prog, "/bin/sh", "--user", "app", "--env", "A=1"}
	build := func(dest string) string {
		t.Helper()
		return buildOK(t, append(args, "-o", dest)...)
	}
	tmp := t.TempDir()
	oci1 := build("oci:" + filepath.Join(tmp, "oci1") + ":v1")
	arc1 := build("docker-archive:" + filepath.Join(tmp, "a1.tar") + ":scratchpack/repro:1")
	build("tar:" + filepath.Join(tmp, "1.tar"))
	time.Sleep(1100 * time.Millisecond) // a second later: any host time that leaks in changes the result
	oci2 := build("oci:" + filepath.Join(tmp, "oci2") + ":v1")
	arc2 := build("docker-archive:" + filepath.Join(tmp, "a2.tar") + ":scratchpack/repro:1")
	build("tar:" + filepath.Join(tmp, "2.tar"))

	if oci1 != oci2 || arc1 != arc2 {
		t.Errorf("digests differ: oci %s then %s, docker-archive %s then %s", oci1, oci2, arc1, arc2)
	}
	t1, err := os.ReadFile(filepath.Join(tmp, "1.tar"))
	if err != nil {
		t.Fatal(err)
	}
	t2, err := os.ReadFile(filepath.Join(tmp, "2.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(t1, t2) {
		t.Errorf("two tar: builds of the same input differ (%d and %d bytes)", len(t1), len(t2))
	}
	// --user app: its home is app's, everything else root's.
	uid, home := appAccount(t)
	owners := map[string]int{}
	if home == "/home/app" {
		owners["home/app/"], _ = strconv.Atoi(uid)
	}
	checkTarTimes(t, t1, time.Unix(0, 0), owners)
	img := ociImage(t, filepath.Join(tmp, "oci1"), "v1")
	if cf, err := img.ConfigFile(); err != nil || !cf.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("created %v (%v), want the epoch", cf.Created, err)
	}

	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	e1 := build("oci:" + filepath.Join(tmp, "e1") + ":v1")
	e2 := build("oci:" + filepath.Join(tmp, "e2") + ":v1")
	if e1 != e2 {
		t.Errorf("with SOURCE_DATE_EPOCH the digests differ: %s then %s", e1, e2)
	}
	if e1 == oci1 {
		t.Errorf("SOURCE_DATE_EPOCH=1700000000 gave the same digest %s as the default: its time is not used", e1)
	}
	img = ociImage(t, filepath.Join(tmp, "e1"), "v1")
	if cf, err := img.ConfigFile(); err != nil || !cf.Created.Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("created %v (%v), want SOURCE_DATE_EPOCH", cf.Created, err)
	}
	build("tar:" + filepath.Join(tmp, "e.tar"))
	te, err := os.ReadFile(filepath.Join(tmp, "e.tar"))
	if err != nil {
		t.Fatal(err)
	}
	checkTarTimes(t, te, time.Unix(1700000000, 0), owners)
}

// checkTarTimes fails t unless every entry of the tarball has modification time want and owner root, or the
// uid (as gid too) owners gives for its name.
func checkTarTimes(t *testing.T, data []byte, want time.Time, owners map[string]int) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the tarball: %v", err)
		}
		n++
		owner := owners[h.Name] // 0:0 unless named
		if !h.ModTime.Equal(want) || h.Uid != owner || h.Gid != owner {
			t.Errorf("%s: mtime %v, owner %d:%d; want %v, %d:%d", h.Name, h.ModTime.UTC(), h.Uid, h.Gid, want.UTC(), owner, owner)
		}
	}
	if n == 0 {
		t.Error("the tarball is empty")
	}
}

func TestE2ECPIO(t *testing.T) {
	needRoot(t)
	needTools(t, "cpio")
	archive := filepath.Join(t.TempDir(), "initramfs.cpio")
	if got := buildOK(t, "/bin/sh", "-o", "cpio:"+archive); got != archive {
		t.Errorf("stdout %q, want the path %q", got, archive)
	}
	cpio := func(dir string, args ...string) string {
		t.Helper()
		f, err := os.Open(archive)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := exec.Command("cpio", args...)
		cmd.Stdin, cmd.Dir = f, dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cpio %v < %s: %v\n%s", args, archive, err, stderr.String())
		}
		return string(out)
	}
	listed := map[string]bool{}
	for _, name := range strings.Split(strings.TrimSpace(cpio("", "-it")), "\n") {
		listed["/"+strings.TrimPrefix(strings.TrimPrefix(name, "./"), "/")] = true
	}
	// The program, its interpreter and libc, each with every symbolic link on the way to it.
	for _, p := range []string{"/bin/sh", interp, libc} {
		chain, err := symlinkChain("/", p)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chain {
			if !listed[c] {
				t.Errorf("cpio -it does not list %s (on the way to %s)", c, p)
			}
		}
	}

	dir := t.TempDir()
	cpio(dir, "-idm", "--no-absolute-filenames", "--quiet")
	if got := mustRunInRoot(t, dir, nil, "/bin/sh", "-c", "echo ok"); got != "ok\n" {
		t.Errorf("sh from the unpacked initramfs printed %q, want \"ok\\n\"", got)
	}
}

// TestE2ESafety: an existing output is never touched without --force, a failed build writes nothing (not
// even a temporary file beside the destination), and every failure says why on stderr with nothing on stdout.
func TestE2ESafety(t *testing.T) {
	fx := fixtures(t)
	build := func(t *testing.T, args ...string) (int, string) {
		t.Helper()
		code, stdout, stderr := scratchpack(t, append([]string{"build"}, args...)...)
		if code != 0 && stdout != "" {
			t.Errorf("exit %d with stdout %q: a failure must print nothing there", code, stdout)
		}
		if code != 0 && stderr == "" {
			t.Errorf("exit %d with an empty stderr", code)
		}
		return code, stderr
	}
	// entries lists a directory's names: the destination and whatever else a build left beside it.
	entries := func(t *testing.T, dir string) []string {
		t.Helper()
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, d := range des {
			names = append(names, d.Name())
		}
		return names
	}

	for _, transport := range []string{"dir", "tar", "cpio", "oci", "docker-archive"} {
		t.Run("existing "+transport, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			if transport == "dir" || transport == "oci" {
				if err := os.MkdirAll(filepath.Join(dest, "sub"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dest, "sub", "keep"), []byte("precious\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(dest, []byte("precious\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			before := treeSnapshot(t, parent)
			code, stderr := build(t, "/bin/sh", "-o", transport+":"+dest)
			if code != 1 || !strings.Contains(stderr, dest) || !strings.Contains(stderr, "--force") {
				t.Errorf("exit %d, stderr %q: want 1, naming %s and --force", code, stderr, dest)
			}
			if diff := cmp.Diff(before, treeSnapshot(t, parent)); diff != "" {
				t.Errorf("a refused build changed the destination or its directory (-before +after):\n%s", diff)
			}

			code, stderr = build(t, "/bin/sh", "--force", "-o", transport+":"+dest)
			if code != 0 {
				t.Fatalf("--force: exit %d: %s", code, stderr)
			}
			if diff := cmp.Diff([]string{"out"}, entries(t, parent)); diff != "" {
				t.Errorf("--force left other files beside the output (-want +got):\n%s", diff)
			}
			if _, err := os.Lstat(filepath.Join(dest, "sub", "keep")); err == nil {
				t.Error("--force kept the old output's files")
			}
			switch transport {
			case "dir":
				if _, err := resolveInRoot(dest, "/bin/sh"); err != nil {
					t.Errorf("--force did not write the new root: %v", err)
				}
			case "oci":
				ociImage(t, dest, "")
			default:
				if data, err := os.ReadFile(dest); err != nil || bytes.Equal(data, []byte("precious\n")) {
					t.Errorf("--force did not replace the file (%v)", err)
				}
			}
		})
	}

	t.Run("empty directory is not refused", func(t *testing.T) {
		dest := t.TempDir()
		if code, stderr := build(t, "/bin/sh", "-o", "dir:"+dest); code != 0 {
			t.Errorf("an existing empty directory: exit %d: %s", code, stderr)
		}
	})

	for _, transport := range []string{"dir", "tar", "cpio", "oci", "docker-archive"} {
		t.Run("missing library "+transport, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			code, stderr := build(t, filepath.Join(fx, "missing", "prog"), "-o", transport+":"+dest)
			if code != 1 || !strings.Contains(stderr, "libgone.so.1") {
				t.Errorf("exit %d, stderr %q: want 1, naming libgone.so.1", code, stderr)
			}
			if names := entries(t, parent); len(names) != 0 {
				t.Errorf("a failed build left %v in the destination's directory", names)
			}
		})
	}

	t.Run("unknown transport", func(t *testing.T) {
		if code, stderr := build(t, "/bin/sh", "-o", "foo:bar"); code != 2 || !strings.Contains(stderr, "foo") {
			t.Errorf("exit %d, stderr %q: want 2, naming the transport", code, stderr)
		}
	})

	t.Run("unwritable destination", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "a-file")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, dest := range []string{"dir:/proc/nope/x", "dir:" + file + "/x", "tar:" + file + "/x.tar", "oci:/proc/nope/x",
			"dir:/proc/scratchpack-e2e", "tar:/sys/scratchpack-e2e.tar", "cpio:/proc/scratchpack-e2e.cpio"} {
			_, p, _ := strings.Cut(dest, ":")
			p, _, _ = strings.Cut(p, ":")
			if code, stderr := build(t, "/bin/sh", "-o", dest); code != 1 || !strings.Contains(stderr, p) {
				t.Errorf("-o %s: exit %d, stderr %q: want 1, naming %s", dest, code, stderr, p)
			}
		}
	})
}

// TestE2EMergedUsr: the root keeps the host's merged-/usr layout (/lib -> usr/lib and so on) and every symbolic
// link on the way to each file, so the interpreter path in the program resolves inside the root as on the host.
func TestE2EMergedUsr(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	buildOK(t, "/bin/ls", "-o", "dir:"+root)
	for _, top := range []string{"/bin", "/lib", "/lib64"} {
		host, err := os.Lstat(top)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Lstat(filepath.Join(root, top))
		if err != nil {
			t.Errorf("%s is not in the root: %v", top, err)
			continue
		}
		if host.Mode()&fs.ModeSymlink == 0 {
			if !st.IsDir() {
				t.Errorf("%s is a directory on the host, %s in the root", top, st.Mode().Type())
			}
			continue
		}
		want, _ := os.Readlink(top)
		if got, err := os.Readlink(filepath.Join(root, top)); err != nil || got != want {
			t.Errorf("%s -> %q in the root (%v), want -> %q as on the host", top, got, err, want)
		}
	}
	ld, err := resolveInRoot(root, interp)
	if err != nil {
		t.Fatalf("%s does not resolve inside the root: %v", interp, err)
	}
	if st, err := os.Stat(ld); err != nil || !st.Mode().IsRegular() || !strings.HasPrefix(ld, root+"/") {
		t.Errorf("%s resolves to %s in the root, not to a regular file there (%v)", interp, ld, err)
	}

	// Every path on the way to the program and each object the loader maps is there, of the same kind and
	// with the same link target as on the host.
	code, stdout, stderr := scratchpack(t, "deps", "--format", "list", "/bin/ls")
	if code != 0 {
		t.Fatalf("deps: exit %d: %s", code, stderr)
	}
	for _, p := range append(strings.Fields(stdout), "/bin/ls") {
		chain, err := symlinkChain("/", p)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chain {
			host, _ := os.Lstat(c)
			got, err := os.Lstat(filepath.Join(root, c))
			if err != nil || got.Mode().Type() != host.Mode().Type() {
				t.Errorf("%s (on the way to %s): %v in the root (%v), want a %v", c, p, got, err, host.Mode().Type())
				continue
			}
			if host.Mode()&fs.ModeSymlink != 0 {
				want, _ := os.Readlink(c)
				if target, _ := os.Readlink(filepath.Join(root, c)); target != want {
					t.Errorf("%s -> %q in the root, want -> %q", c, target, want)
				}
			}
		}
	}

	t.Run("runs", func(t *testing.T) {
		out := mustRunInRoot(t, root, nil, "/bin/ls", "/")
		for _, want := range []string{"bin", "lib64", "usr"} {
			if !slices.Contains(strings.Fields(out), want) {
				t.Errorf("ls / in the root printed %q, without %s", out, want)
			}
		}
	})
}

// TestE2EPackageLayers: an image layered by package unpacks with umoci to the same root as the single-layer
// image, and its program runs there.
func TestE2EPackageLayers(t *testing.T) {
	needRoot(t)
	needTools(t, "umoci")
	dir := t.TempDir()
	layered, single := filepath.Join(dir, "layered"), filepath.Join(dir, "single")
	buildDigest(t, "--layering", "package", "/usr/bin/curl", "-o", "oci:"+layered+":latest")
	buildDigest(t, "/usr/bin/curl", "-o", "oci:"+single+":latest")
	if n := len(ociImageLayers(t, layered)); n < 10 {
		t.Errorf("the layered image has %d layers", n)
	}
	lb, _ := umociUnpack(t, layered+":latest")
	sb, _ := umociUnpack(t, single+":latest")
	lroot, sroot := filepath.Join(lb, "rootfs"), filepath.Join(sb, "rootfs")
	rel := func(root string) map[string]string { // path inside the root -> mode, size, content, link target
		out := map[string]string{}
		for p, desc := range treeSnapshot(t, root) {
			f := strings.Fields(desc)
			if strings.HasPrefix(f[0], "d") {
				f = f[:1] // a directory's size and time are the file system's
			} else {
				f = append(f[:2], f[3:]...) // not the time
			}
			out[strings.TrimPrefix(p, root)] = strings.Join(f, " ")
		}
		return out
	}
	if a, b := rel(lroot), rel(sroot); !maps.Equal(a, b) {
		for p := range a {
			if a[p] != b[p] {
				t.Errorf("%s: layered %q, single %q", p, a[p], b[p])
			}
		}
		t.Errorf("the layered image unpacks to another root than the single-layer one (%d and %d paths)", len(a), len(b))
	}
	if out := mustRunInRoot(t, lroot, nil, "/usr/bin/curl", "--version"); !strings.HasPrefix(out, "curl ") {
		t.Errorf("curl in the layered image printed %q", out)
	}
}

func ociImageLayers(t *testing.T, dir string) []v1.Layer {
	t.Helper()
	ls, err := ociImage(t, dir, "latest").Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls
}
