package main

// End-to-end tests of --root IMAGE: programs and their libraries taken from a container image (an OCI layout,
// a docker archive, a registry) instead of a directory. The image is a real Debian 12 root made by mmdebstrap
// and packed into layers by umoci, never by scratchpack; the oracle is that image's own loader and curl, run
// in an unpacked copy of it under chroot.

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const (
	// brotliLink is the library the whiteout takes away: libbrotlidec.so.1 (in curl's closure) needs it.
	brotliLink = "/usr/lib/x86_64-linux-gnu/libbrotlicommon.so.1"
	caBundle   = "/etc/ssl/certs/ca-certificates.crt"
)

// The account of user svc in the image's /etc/passwd: tag full has the first, tag replaced (whose top layer
// rewrites /etc/passwd and /etc/group) the second.
var (
	svcLower = account{UID: "4321", GID: "4321", Home: "/srv/svc"}
	svcUpper = account{UID: "4322", GID: "4322", Home: "/srv/svc-upper"}
)

type account struct{ UID, GID, Home string }

// imageFixture is a Debian 12 image with curl, in an OCI layout with three tags:
//   - full: one layer, the whole root;
//   - deleted: full plus a layer whose only change is a whiteout of the file behind brotliLink;
//   - replaced: deleted plus a layer that puts that file back and rewrites /etc/passwd and /etc/group (svc
//     becomes svcUpper).
type imageFixture struct {
	layout     string            // the OCI layout directory
	archives   map[string]string // tag (full, deleted) -> a docker-archive file of it, made by skopeo
	rootfs     map[string]string // tag -> the tag unpacked by umoci: the oracle's root
	brotliReal string            // the versioned file behind brotliLink, in the image
	caBundle   []byte            // the image's /etc/ssl/certs/ca-certificates.crt (Mozilla's CAs and ca)
	ca         *x509.Certificate // a CA only this image's bundle trusts
	caKey      *ecdsa.PrivateKey
	took       time.Duration
}

func (f *imageFixture) oci(tag string) string { return "oci:" + f.layout + ":" + tag }

var (
	imageFixtureOnce sync.Once
	imageFixtureVal  *imageFixture
	imageFixtureErr  error
	// imageFixtureDir holds the fixture for the whole test binary; TestMain removes it.
	imageFixtureDir string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if imageFixtureDir != "" {
		os.RemoveAll(imageFixtureDir)
	}
	if binaryPath != "" {
		os.RemoveAll(filepath.Dir(binaryPath))
	}
	os.Exit(code)
}

// imageRoot returns the image fixture, made on first use. Unpacking layers with their owners and running the
// oracle under chroot need root; mmdebstrap, umoci and skopeo are installed by .ci/install-deps.
func imageRoot(t *testing.T) *imageFixture {
	t.Helper()
	needRoot(t)
	needTools(t, "mmdebstrap", "umoci", "skopeo")
	imageFixtureOnce.Do(func() { imageFixtureVal, imageFixtureErr = makeImageFixture() })
	if imageFixtureErr != nil {
		t.Fatalf("making the Debian 12 image fixture: %v", imageFixtureErr)
	}
	return imageFixtureVal
}

// debianMirror is the host's Debian mirror (the first URIs: of debian.sources), else deb.debian.org.
func debianMirror() string {
	if data, err := os.ReadFile("/etc/apt/sources.list.d/debian.sources"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "URIs:"); ok && len(strings.Fields(v)) > 0 {
				return strings.Fields(v)[0]
			}
		}
	}
	return "http://deb.debian.org/debian"
}

func makeImageFixture() (*imageFixture, error) {
	start := time.Now()
	dir, err := os.MkdirTemp("", "scratchpack-imageroot-")
	if err != nil {
		return nil, err
	}
	imageFixtureDir = dir
	tool := func(name string, args ...string) error {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	f := &imageFixture{layout: filepath.Join(dir, "oci"), archives: map[string]string{}, rootfs: map[string]string{}}

	// The host's architecture only. The extract variant unpacks the packages and runs none of their maintainer
	// scripts: what those would write (the CA bundle, the account files) is written below.
	debian := filepath.Join(dir, "debian")
	if err := tool("mmdebstrap", "--variant=extract", "--include=curl,ca-certificates,base-passwd", "bookworm", debian, debianMirror()); err != nil {
		return nil, err
	}
	if f.ca, f.caKey, err = newCA(); err != nil {
		return nil, err
	}
	certs, err := filepath.Glob(filepath.Join(debian, "usr/share/ca-certificates/mozilla/*.crt"))
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("no CA certificates under %s/usr/share/ca-certificates/mozilla (%v)", debian, err)
	}
	var bundle []byte
	for _, c := range certs { // Glob sorts, as update-ca-certificates does
		data, err := os.ReadFile(c)
		if err != nil {
			return nil, err
		}
		if bundle = append(bundle, data...); !bytes.HasSuffix(bundle, []byte("\n")) {
			bundle = append(bundle, '\n')
		}
	}
	f.caBundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.ca.Raw})...)
	if err := os.WriteFile(filepath.Join(debian, caBundle), f.caBundle, 0o644); err != nil {
		return nil, err
	}
	if err := writeAccounts(debian, svcLower); err != nil {
		return nil, err
	}

	// umoci keeps the device nodes mmdebstrap made in /dev: they stay, as in any image made from a root.
	work := filepath.Join(dir, "work")
	rootfs := filepath.Join(work, "rootfs")
	steps := [][]string{
		{"init", "--layout", f.layout},
		{"new", "--image", f.layout + ":base"},
		{"unpack", "--image", f.layout + ":base", work},
	}
	for _, s := range steps {
		if err := tool("umoci", s...); err != nil {
			return nil, err
		}
	}
	if err := tool("cp", "-a", debian+"/.", rootfs+"/"); err != nil {
		return nil, err
	}
	// --refresh-bundle makes the next repack's layer the difference from this one, not from base.
	if err := tool("umoci", "repack", "--refresh-bundle", "--image", f.layout+":full", work); err != nil {
		return nil, err
	}
	real, err := resolveInRoot(rootfs, brotliLink)
	if err != nil {
		return nil, err
	}
	f.brotliReal = "/" + strings.TrimPrefix(real, rootfs+"/")
	if f.brotliReal == brotliLink {
		return nil, fmt.Errorf("%s is not a symbolic link in the Debian root: the fixture expects one to the versioned file", brotliLink)
	}
	if err := os.Remove(real); err != nil {
		return nil, err
	}
	if err := tool("umoci", "repack", "--refresh-bundle", "--image", f.layout+":deleted", work); err != nil {
		return nil, err
	}
	if err := tool("cp", "-a", filepath.Join(debian, f.brotliReal), real); err != nil {
		return nil, err
	}
	if err := writeAccounts(rootfs, svcUpper); err != nil {
		return nil, err
	}
	if err := tool("umoci", "repack", "--image", f.layout+":replaced", work); err != nil {
		return nil, err
	}

	for _, tag := range []string{"full", "deleted", "replaced"} {
		bundle := filepath.Join(dir, "unpacked-"+tag)
		if err := tool("umoci", "unpack", "--image", f.layout+":"+tag, bundle); err != nil {
			return nil, err
		}
		f.rootfs[tag] = filepath.Join(bundle, "rootfs")
	}
	for _, tag := range []string{"full", "deleted"} {
		f.archives[tag] = filepath.Join(dir, tag+".tar")
		if err := tool("skopeo", "--insecure-policy", "copy", "--quiet", "oci:"+f.layout+":"+tag, "docker-archive:"+f.archives[tag]+":scratchpack/deb:"+tag); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{debian, work} {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
	}
	f.took = time.Since(start)
	return f, nil
}

// writeAccounts writes root's /etc/passwd and /etc/group as base-passwd's postinst would (its master files),
// plus the account svc.
func writeAccounts(root string, svc account) error {
	for _, a := range []struct{ master, file, line string }{
		{"passwd.master", "etc/passwd", fmt.Sprintf("svc:x:%s:%s:scratchpack test service:%s:/usr/sbin/nologin\n", svc.UID, svc.GID, svc.Home)},
		{"group.master", "etc/group", fmt.Sprintf("svc:x:%s:\n", svc.GID)},
	} {
		master, err := os.ReadFile(filepath.Join(root, "usr/share/base-passwd", a.master))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, a.file), append(master, a.line...), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// newCA makes a self-signed CA certificate and its key.
func newCA() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "scratchpack image fixture CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// caServer starts a TLS server on loopback answering body, with a certificate for 127.0.0.1 signed by the
// fixture's CA: only a client that trusts the image's CA bundle accepts it.
func (f *imageFixture) caServer(t *testing.T, body string) *httptest.Server {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.ca, &key.PublicKey, f.caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// loaderInRoot is loaderList inside root: the root's own loader lists prog (`ld.so --list`, under chroot), and
// the sorted paths it maps are returned; t fails if the loader cannot find one.
func loaderInRoot(t *testing.T, root, prog string) []string {
	t.Helper()
	out := mustRunInRoot(t, root, nil, interp, "--list", prog)
	if strings.Contains(out, "not found") {
		t.Fatalf("the loader in %s misses a library of %s:\n%s", root, prog, out)
	}
	paths := tracePaths(out)
	if len(paths) < 3 {
		t.Fatalf("the loader in %s lists too few objects for %s:\n%s", root, prog, out)
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}

// layerNames returns the names of the entries of a layer's tar, without a leading "./" or "/".
func layerNames(t *testing.T, l v1.Layer) []string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("reading a layer: %v", err)
		}
		names = append(names, strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/"))
	}
}

// TestImageRootFixture checks that the fixture is what the other tests need: real upper layers over one base
// layer, the top of deleted holding exactly a whiteout (so the image's loader misses the library), the top of
// replaced putting it back, and a CA bundle that is not the host's.
func TestImageRootFixture(t *testing.T) {
	f := imageRoot(t)
	t.Logf("the fixture took %v", f.took.Round(100*time.Millisecond))
	whiteout := strings.TrimPrefix(path.Join(path.Dir(f.brotliReal), ".wh."+path.Base(f.brotliReal)), "/")
	cases := []struct {
		tag    string
		layers int
		top    []string // entries the top layer must hold
		noTop  []string // entries it must not hold
	}{
		{"full", 1, []string{"etc/passwd", strings.TrimPrefix(f.brotliReal, "/")}, []string{whiteout}},
		{"deleted", 2, []string{whiteout}, []string{"etc/passwd"}},
		{"replaced", 3, []string{"etc/passwd", "etc/group", strings.TrimPrefix(f.brotliReal, "/")}, []string{whiteout}},
	}
	var base v1.Hash
	for _, tc := range cases {
		t.Run(tc.tag, func(t *testing.T) {
			layers, err := ociImage(t, f.layout, tc.tag).Layers()
			if err != nil {
				t.Fatal(err)
			}
			if len(layers) != tc.layers {
				t.Fatalf("%d layers, want %d", len(layers), tc.layers)
			}
			d, err := layers[0].Digest()
			if err != nil {
				t.Fatal(err)
			}
			if base == (v1.Hash{}) {
				base = d
			} else if d != base {
				t.Errorf("the first layer is %s, full's is %s: the tags do not share their base", d, base)
			}
			names := layerNames(t, layers[len(layers)-1])
			for _, n := range tc.top {
				if !slices.Contains(names, n) {
					t.Errorf("the top layer lacks %s", n)
				}
			}
			for _, n := range tc.noTop {
				if slices.Contains(names, n) {
					t.Errorf("the top layer holds %s", n)
				}
			}
			if tc.tag == "deleted" && !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(path.Base(n), ".wh.") }) {
				t.Errorf("the top layer holds no whiteout: %v", names)
			}
		})
	}

	if _, stderr, err := runInRoot(t, f.rootfs["deleted"], nil, interp, "--list", "/usr/bin/curl"); err == nil || !strings.Contains(stderr, path.Base(brotliLink)) {
		t.Errorf("the image's loader in the unpacked deleted: err %v, stderr %q; want a failure naming %s", err, stderr, path.Base(brotliLink))
	}
	if got := loaderInRoot(t, f.rootfs["replaced"], "/usr/bin/curl"); !slices.Contains(got, brotliLink) {
		t.Errorf("the image's loader in the unpacked replaced does not map %s: %v", brotliLink, got)
	}
	if host, err := os.ReadFile(caBundle); err == nil && bytes.Equal(host, f.caBundle) {
		t.Errorf("the image's CA bundle is the host's: a build that took the host's could not be told apart")
	}
}

// TestImageRootDeps: deps over an image, from each transport, lists exactly what the image's own loader maps
// in an unpacked copy; a library a whiteout deleted is not found.
func TestImageRootDeps(t *testing.T) {
	f := imageRoot(t)
	reg := startRegistry(t)
	for _, tag := range []string{"full", "deleted"} {
		hostTool(t, "skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", f.oci(tag), "docker://"+reg+"/scratchpack/deb:"+tag)
	}
	loader := map[string][]string{}
	cases := []struct {
		name, root, tag string // tag: the oracle's, or "deleted"
	}{
		{"oci", f.oci("full"), "full"},
		{"oci upper layer restores", f.oci("replaced"), "replaced"},
		{"docker-archive", "docker-archive:" + f.archives["full"], "full"},
		{"registry", "docker://" + reg + "/scratchpack/deb:full", "full"},
		{"oci whiteout", f.oci("deleted"), "deleted"},
		{"docker-archive whiteout", "docker-archive:" + f.archives["deleted"], "deleted"},
		{"registry whiteout", "docker://" + reg + "/scratchpack/deb:deleted", "deleted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := scratchpack(t, "deps", "--root", tc.root, "--format", "list", "/usr/bin/curl")
			if tc.tag == "deleted" {
				if code != 1 || !strings.Contains(stderr, path.Base(brotliLink)+" not found") {
					t.Errorf("exit %d, stderr %q: want 1, saying %s not found", code, stderr, path.Base(brotliLink))
				}
				if slices.Contains(strings.Fields(stdout), brotliLink) {
					t.Errorf("the list holds %s, which the whiteout deleted:\n%s", brotliLink, stdout)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if loader[tc.tag] == nil {
				loader[tc.tag] = loaderInRoot(t, f.rootfs[tc.tag], "/usr/bin/curl")
			}
			if diff := cmp.Diff(loader[tc.tag], strings.Fields(stdout)); diff != "" {
				t.Errorf("deps --root %s differs from the image's loader (-loader +ours):\n%s", tc.root, diff)
			}
		})
	}
}

// contentOf is treeSnapshot without times and relative to dir: what two roots built the same way share.
func contentOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for p, desc := range treeSnapshot(t, dir) {
		f := strings.SplitN(desc, " ", 4) // mode, size, mtime, then the target or hash if any
		got["/"+strings.TrimPrefix(p, dir)] = strings.Join(slices.Delete(f, 2, 3), " ")
	}
	return got
}

// TestImageRootBuild builds curl from the image into a directory: every object the image's loader maps is
// there with the image's bytes, the root is what the same build from the unpacked image gives, and curl runs
// there, trusting the image's CA bundle.
func TestImageRootBuild(t *testing.T) {
	f := imageRoot(t)
	const body = "hello from a TLS server, through curl taken from an image\n"
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
	srv.StartTLS()
	defer srv.Close()
	certFile := filepath.Join(t.TempDir(), "test.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"/usr/bin/curl", "--add", certFile + ":/ca/test.pem"}
	root := filepath.Join(t.TempDir(), "root")
	buildOK(t, append(args, "--root", f.oci("full"), "-o", "dir:"+root)...)
	image := f.rootfs["full"]

	t.Run("closure", func(t *testing.T) {
		want := loaderInRoot(t, image, "/usr/bin/curl")
		for _, p := range append(want, "/usr/bin/curl") {
			got, err := resolveInRoot(root, p)
			if err != nil {
				t.Errorf("%s is not in the built root: %v", p, err)
				continue
			}
			src, err := resolveInRoot(image, p)
			if err != nil {
				t.Fatal(err)
			}
			a, errA := os.ReadFile(got)
			b, errB := os.ReadFile(src)
			if errA != nil || errB != nil || !bytes.Equal(a, b) {
				t.Errorf("%s in the built root is not the image's (%v, %v)", p, errA, errB)
			}
		}
		checkLoaderFindsAll(t, root, interp)
		if diff := cmp.Diff(want, loaderInRoot(t, root, "/usr/bin/curl")); diff != "" {
			t.Errorf("the loader maps other paths in the built root than in the image (-image +built):\n%s", diff)
		}
	})

	t.Run("same as the unpacked image as a directory root", func(t *testing.T) {
		dirRoot := filepath.Join(t.TempDir(), "root")
		buildOK(t, append(args, "--root", image, "-o", "dir:"+dirRoot)...)
		if diff := cmp.Diff(contentOf(t, dirRoot), contentOf(t, root)); diff != "" {
			t.Errorf("--root %s and --root %s (its unpacked copy) build different roots (-directory +image):\n%s", f.oci("full"), image, diff)
		}
	})

	t.Run("not the rest of the image", func(t *testing.T) {
		for _, p := range []string{"/var/lib/dpkg/status", "/usr/share/base-passwd/passwd.master", "/usr/share/ca-certificates", "/usr/share/doc/curl", "/etc/apt"} {
			if _, err := os.Lstat(filepath.Join(image, p)); err != nil {
				t.Fatalf("the image has no %s: %v", p, err)
			}
			if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s, which curl does not need, is in the built root (%v)", p, err)
			}
		}
	})

	t.Run("runs", func(t *testing.T) {
		want := mustRunInRoot(t, image, nil, "/usr/bin/curl", "--version")
		if got := mustRunInRoot(t, root, nil, "/usr/bin/curl", "--version"); got != want || !strings.HasPrefix(got, "curl ") {
			t.Errorf("curl --version in the built root printed %q; the image's own curl prints %q", got, want)
		}
	})

	t.Run("tls", func(t *testing.T) {
		curl := []string{"/usr/bin/curl", "-sS", "--max-time", "10"}
		if got := mustRunInRoot(t, root, nil, append(curl, "--cacert", "/ca/test.pem", srv.URL+"/")...); got != body {
			t.Errorf("curl --cacert /ca/test.pem printed %q, want %q", got, body)
		}
		if stdout, stderr, err := runInRoot(t, root, nil, append(curl, srv.URL+"/")...); err == nil {
			t.Errorf("curl accepted a CA neither the image nor --cacert trusts: stdout %q, stderr %q", stdout, stderr)
		}
		// A server only the image's bundle vouches for: the image's own curl accepts it, so must the built one.
		ca := f.caServer(t, body)
		for _, r := range []string{image, root} {
			if got := mustRunInRoot(t, r, nil, append(curl, ca.URL+"/")...); got != body {
				t.Errorf("curl in %s, through the image's CA bundle, printed %q, want %q", r, got, body)
			}
		}
	})

	t.Run("ca bundle", func(t *testing.T) {
		p, err := resolveInRoot(root, caBundle)
		if err != nil {
			t.Fatalf("--certs auto: %v", err)
		}
		if data, err := os.ReadFile(p); err != nil || !bytes.Equal(data, f.caBundle) {
			t.Errorf("%s in the built root is not the image's (err %v)", caBundle, err)
		}
		never := filepath.Join(t.TempDir(), "root")
		buildOK(t, "--root", f.oci("full"), "/usr/bin/curl", "--certs", "never", "-o", "dir:"+never)
		if _, err := os.Lstat(filepath.Join(never, caBundle)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("--certs never: %s is in the root (%v)", caBundle, err)
		}
	})
}

// accountOf returns name's account in root's /etc/passwd and the gid of its group in /etc/group.
func accountOf(t *testing.T, root, name string) (acct account, groupGID string) {
	t.Helper()
	for _, file := range []string{"etc/passwd", "etc/group"} {
		data, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			switch f := strings.Split(line, ":"); {
			case f[0] != name:
			case file == "etc/passwd" && len(f) >= 6:
				acct = account{UID: f[2], GID: f[3], Home: f[5]}
			case file == "etc/group" && len(f) >= 3:
				groupGID = f[2]
			}
		}
	}
	return acct, groupGID
}

// TestImageRootUser: --user NAME takes NAME's uid, gid and home from the image's /etc/passwd, the topmost
// layer's when an upper one rewrote it.
func TestImageRootUser(t *testing.T) {
	f := imageRoot(t)
	for _, tc := range []struct {
		tag  string
		want account
	}{
		{"full", svcLower},
		{"replaced", svcUpper},
	} {
		t.Run(tc.tag, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			buildOK(t, "--root", f.oci(tc.tag), "/usr/bin/curl", "--user", "svc", "--certs", "never", "-o", "dir:"+root)
			acct, gid := accountOf(t, root, "svc")
			if diff := cmp.Diff(tc.want, acct); diff != "" {
				t.Errorf("svc in the built /etc/passwd (-want +got):\n%s", diff)
			}
			if gid != tc.want.GID {
				t.Errorf("group svc has gid %q in the built /etc/group, want %s", gid, tc.want.GID)
			}
			if r, _ := accountOf(t, root, "root"); r.UID != "0" {
				t.Errorf("root has uid %q in the built /etc/passwd, want 0", r.UID)
			}
		})
	}
}

// TestImageRootWhiteout: a library an upper layer deleted is not there to take: the build fails naming it and
// writes nothing, whatever the output.
func TestImageRootWhiteout(t *testing.T) {
	f := imageRoot(t)
	for _, tc := range []struct{ root, transport string }{
		{f.oci("deleted"), "dir"},
		{f.oci("deleted"), "oci"},
		{f.oci("deleted"), "tar"},
		{"docker-archive:" + f.archives["deleted"], "dir"},
	} {
		t.Run(strings.SplitN(tc.root, ":", 2)[0]+" to "+tc.transport, func(t *testing.T) {
			parent := t.TempDir()
			code, stdout, stderr := scratchpack(t, "build", "--root", tc.root, "/usr/bin/curl", "-o", tc.transport+":"+filepath.Join(parent, "out"))
			if code != 1 || stdout != "" || !strings.Contains(stderr, path.Base(brotliLink)+" not found") {
				t.Errorf("exit %d, stdout %q, stderr %q: want 1, nothing on stdout, saying %s not found", code, stdout, stderr, path.Base(brotliLink))
			}
			if des, err := os.ReadDir(parent); err != nil || len(des) != 0 {
				t.Errorf("a failed build left %v in the destination's directory (%v)", des, err)
			}
		})
	}
}

// TestImageRootOCIOutput: an image built from an image root is a valid OCI image that umoci unpacks and whose
// curl runs, with --user svc resolved by umoci through the image's own account.
func TestImageRootOCIOutput(t *testing.T) {
	f := imageRoot(t)
	dir := filepath.Join(t.TempDir(), "oci")
	digest := buildDigest(t, "--root", f.oci("full"), "/usr/bin/curl", "--user", "svc", "-o", "oci:"+dir+":v1")
	img := ociImage(t, dir, "v1")
	if d, err := img.Digest(); err != nil || d.String() != digest {
		t.Errorf("the layout's image digest is %v (%v), stdout said %s", d, err, digest)
	}
	inspect, config := skopeoInspect(t, "oci:"+dir+":v1")
	if inspect.Digest != digest || inspect.Architecture != "amd64" || inspect.Os != "linux" {
		t.Errorf("skopeo inspect: digest %s, %s/%s; want %s, linux/amd64", inspect.Digest, inspect.Os, inspect.Architecture, digest)
	}
	if diff := cmp.Diff([]string{"/usr/bin/curl"}, config.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	bundle, rc := umociUnpack(t, dir+":v1")
	if fmt.Sprint(rc.Process.User.UID) != svcLower.UID || fmt.Sprint(rc.Process.User.GID) != svcLower.GID {
		t.Errorf("umoci resolved --user svc to %d:%d, want the image's %s:%s", rc.Process.User.UID, rc.Process.User.GID, svcLower.UID, svcLower.GID)
	}
	want := mustRunInRoot(t, f.rootfs["full"], nil, "/usr/bin/curl", "--version")
	if got := mustRunInRoot(t, filepath.Join(bundle, "rootfs"), nil, "/usr/bin/curl", "--version"); got != want {
		t.Errorf("curl --version in the unpacked output printed %q; the image's own curl prints %q", got, want)
	}
}
