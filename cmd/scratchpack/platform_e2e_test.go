package main

// One build, three platforms: amd64 from this machine's root, arm64 and i386 from real Debian 12 trees
// (mmdebstrap), each with a program "cross-built" for it (the tree's own basename, given from outside the
// tree per platform). The index is pushed to Debian's registry and written as an OCI layout; each platform is
// pulled back with skopeo --override-arch, unpacked with umoci and run: curl fetches from a TLS server
// that only the image's CA bundle trusts (arm64 under qemu-user, i386 natively).

import (
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scratchpack/scratchpack/internal/debtree"
)

// platformTrees makes (once per machine) the Debian 12 trees the platform tests build from.
func platformTree(t *testing.T, arch string) string {
	t.Helper()
	if _, err := debtree.QEMU(arch); err != nil {
		t.Skip(err)
	}
	dir, err := debtree.Make(arch, debtree.CorpusPackages(arch)...)
	if err != nil {
		if errors.Is(err, debtree.ErrNoTool) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	return dir
}

// cross puts a tree's program outside every root as bin/ARCH/svc, as a cross-compiled program would be.
func cross(t *testing.T, bin, arch, from string) string {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(bin, arch, "svc")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestE2EPlatformIndex(t *testing.T) {
	needRoot(t)
	needTools(t, "skopeo", "umoci", "docker-registry")
	arm := platformTree(t, "arm64")
	i386 := platformTree(t, "i386")
	qemu, err := debtree.QEMU("arm64")
	if err != nil {
		t.Skip(err)
	}

	ca, key, err := newCA()
	if err != nil {
		t.Fatal(err)
	}
	srv := (&imageFixture{ca: ca, caKey: key}).caServer(t, "hello from every platform\n")
	work := t.TempDir()
	caFile := filepath.Join(work, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(work, "bin")
	svcs := map[string]string{
		"linux/amd64": cross(t, bin, "amd64", "/usr/bin/basename"),
		"linux/arm64": cross(t, bin, "arm64", filepath.Join(arm, "usr/bin/basename")),
		"linux/386":   cross(t, bin, "386", filepath.Join(i386, "usr/bin/basename")),
	}
	reg := startRegistry(t)
	roots := []string{"--root", "linux/arm64=" + arm, "--root", "linux/386=" + i386, "--root", "linux/amd64=/"}
	args := func(outputs ...string) []string {
		a := append([]string{"--certs", "never", "--add", caFile + ":/etc/ssl/certs/ca-certificates.crt"}, roots...)
		for p, svc := range svcs {
			a = append(a, "--add", p+"="+svc+":/svc")
		}
		a = append(a, "/usr/bin/curl")
		for _, o := range outputs {
			a = append(a, "-o", o)
		}
		return a
	}
	layout := filepath.Join(work, "oci")
	ref := reg + "/multi:1"
	_, out, stderr := scratchpack(t, append([]string{"build"}, args("docker://"+ref, "oci:"+layout+":latest")...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || lines[0] != lines[1] || !strings.HasPrefix(lines[0], "sha256:") {
		t.Fatalf("build printed %q (want the index digest once per output)\nstderr: %s", out, stderr)
	}
	digest := lines[0]
	for _, p := range []string{"linux/amd64: ", "linux/arm64: ", "linux/386: "} {
		if !strings.Contains(stderr, p) {
			t.Errorf("the notes do not say which platform they are of (%q):\n%s", p, stderr)
		}
	}
	// Reproducible: the same roots, given in another order (and the adds in another: map order), make the
	// same index.
	roots = []string{"--root", "linux/amd64=/", "--root", "linux/386=" + i386, "--root", "linux/arm64=" + arm}
	if again := buildDigest(t, args("oci:"+filepath.Join(work, "again"))...); again != digest {
		t.Errorf("the same roots gave index %s, then %s", digest, again)
	}

	var index struct {
		MediaType string
		Manifests []struct {
			Digest   string
			Platform struct{ OS, Architecture, Variant string }
		}
	}
	raw := hostTool(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref)
	if err := json.Unmarshal([]byte(raw), &index); err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, m := range index.Manifests {
		plats = append(plats, m.Platform.OS+"/"+m.Platform.Architecture)
	}
	if index.MediaType != "application/vnd.oci.image.index.v1+json" || !slices.Equal(plats, []string{"linux/386", "linux/amd64", "linux/arm64"}) {
		t.Fatalf("the registry holds %s for %v, want an OCI index of linux/386, linux/amd64, linux/arm64:\n%s", index.MediaType, plats, raw)
	}

	for _, c := range []struct {
		arch, platform string
		machine        elf.Machine
		qemu           string
	}{
		{"amd64", "linux/amd64", elf.EM_X86_64, ""},
		{"arm64", "linux/arm64", elf.EM_AARCH64, qemu},
		{"386", "linux/386", elf.EM_386, ""},
	} {
		t.Run(c.arch, func(t *testing.T) {
			pulled := filepath.Join(t.TempDir(), "oci")
			hostTool(t, "skopeo", "copy", "-q", "--src-tls-verify=false", "--override-arch", c.arch, "docker://"+ref, "oci:"+pulled+":x")
			insp, cfg := skopeoInspect(t, "oci:"+pulled+":x")
			if insp.Architecture != c.arch || cfg.Architecture != c.arch || cfg.OS != "linux" {
				t.Errorf("pulled %s: inspect says %s, the config %s/%s", c.arch, insp.Architecture, cfg.OS, cfg.Architecture)
			}
			bundle, rc := umociUnpack(t, pulled+":x")
			root := filepath.Join(bundle, "rootfs")
			if !slices.Equal(rc.Process.Args, []string{"/usr/bin/curl"}) {
				t.Errorf("%s: the entrypoint is %v, want the FILE, /usr/bin/curl", c.arch, rc.Process.Args)
			}
			for _, p := range []string{"/usr/bin/curl", "/svc"} {
				f, err := elf.Open(filepath.Join(root, p))
				if err != nil {
					t.Fatal(err)
				}
				if f.Machine != c.machine {
					t.Errorf("%s: %s is %s, want %s", c.arch, p, f.Machine, c.machine)
				}
				f.Close()
			}
			run := func(argv ...string) string {
				t.Helper()
				return mustRunInRoot(t, root, nil, underQEMU(t, root, c.qemu, argv...)...)
			}
			if got := run("/usr/bin/curl", "-sS", srv.URL); got != "hello from every platform\n" {
				t.Errorf("%s: curl in the image printed %q", c.arch, got)
			}
			if got := run("/svc", "/a/b/the-platform's-own"); got != "the-platform's-own\n" {
				t.Errorf("%s: the per-platform program printed %q", c.arch, got)
			}
		})
	}

	// A tree output holds one platform: several are refused before any work, --platform picks one.
	code, _, stderr := scratchpack(t, append([]string{"build"}, args("dir:"+filepath.Join(work, "tree"))...)...)
	if code == 0 || !strings.Contains(stderr, "cannot hold several platforms (linux/386, linux/amd64, linux/arm64)") {
		t.Errorf("a dir: output of three platforms: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(work, "tree")); err == nil {
		t.Error("the refused build wrote its output")
	}
	tree := filepath.Join(work, "arm-tree")
	buildOK(t, append([]string{"--platform", "linux/arm64"}, args("dir:"+tree)...)...)
	f, err := elf.Open(filepath.Join(tree, "svc"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("--platform linux/arm64 -o dir: wrote a %s /svc", f.Machine)
	}
}

// Legacy hwcap builds in real trees: armhf's libvpx has a vfp/neon/ copy that the loader reaches only
// through a cache entry, i386's libx264 an i686/sse2/ copy. A build takes both copies of each (--cpu all: an
// image runs on any processor of its architecture), writes the cache the first needs, and the image's own
// loader then maps the variant this processor (qemu's, or this machine's) selects.
func TestE2EHWCapVariants(t *testing.T) {
	needRoot(t)
	for _, c := range []struct {
		arch, file, loader, plain, variant string
	}{
		{"armhf", "/usr/bin/vpxenc", "/lib/ld-linux-armhf.so.3",
			"/lib/arm-linux-gnueabihf/libvpx.so.7", "/lib/arm-linux-gnueabihf/vfp/neon/libvpx.so.7"},
		{"i386", "/usr/lib/i386-linux-gnu/gstreamer-1.0/libgstx264.so", "/lib/ld-linux.so.2",
			"/lib/i386-linux-gnu/libx264.so.164", "/lib/i386-linux-gnu/i686/sse2/libx264.so.164"},
	} {
		t.Run(c.arch, func(t *testing.T) {
			tree := platformTree(t, c.arch)
			qemu, _ := debtree.QEMU(c.arch)
			out := filepath.Join(t.TempDir(), "root")
			buildOK(t, "--root", tree, "--certs", "never", c.file, "-o", "dir:"+out)
			for _, p := range []string{c.plain, c.variant, "/etc/ld.so.cache"} {
				if _, err := resolveInRoot(out, p); err != nil {
					t.Errorf("%s is not in the image: %v", p, err)
				}
			}
			list := mustRunInRoot(t, out, nil, underQEMU(t, out, qemu, c.loader, "--list", c.file)...)
			if !strings.Contains(list, c.variant+" ") {
				t.Errorf("the image's loader does not map %s:\n%s", c.variant, list)
			}
			if strings.Contains(list, "not found") {
				t.Errorf("the image's loader misses a library:\n%s", list)
			}
		})
	}
}

// underQEMU returns argv run through the static qemu-user binary qemu, copied into root for it (argv as it
// is when qemu is "": the machine runs it itself).
func underQEMU(t *testing.T, root, qemu string, argv ...string) []string {
	t.Helper()
	if qemu == "" {
		return argv
	}
	data, err := os.ReadFile(qemu)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".qemu-static"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	return append([]string{"/.qemu-static"}, argv...)
}
