// Package debtree makes real Debian 12 trees of any architecture for tests: mmdebstrap's extract variant
// (packages unpacked, no maintainer script run, so nothing of the foreign architecture is executed) over the
// host's Debian mirror, with merged /usr. A tree is made once per architecture and package set and kept in
// the system's temporary directory for later runs; concurrent test binaries wait for each other.
package debtree

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Suite is the Debian release the trees are of.
const Suite = "bookworm"

// qemus are the qemu-user binaries that run an architecture this x86-64 machine cannot run itself.
var qemus = map[string]string{
	"arm64": "qemu-aarch64-static",
	"armhf": "qemu-arm-static",
}

// QEMU returns the static qemu-user binary that runs arch's programs on this machine, "" when the machine
// runs them itself (amd64, i386), or an error naming what to install.
func QEMU(arch string) (string, error) {
	name, ok := qemus[arch]
	if !ok {
		return "", nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s is %w (apt-get install qemu-user-static)", name, ErrNoTool)
	}
	return p, nil
}

// Mirror is the host's Debian mirror: the first URIs: of /etc/apt/sources.list.d/debian.sources, else the
// first deb line of /etc/apt/sources.list, else deb.debian.org.
func Mirror() string {
	if data, err := os.ReadFile("/etc/apt/sources.list.d/debian.sources"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "URIs:"); ok && len(strings.Fields(v)) > 0 {
				return strings.Fields(v)[0]
			}
		}
	}
	if data, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "deb" {
				return f[1]
			}
		}
	}
	return "http://deb.debian.org/debian"
}

// CorpusPackages is what the tests install into a tree of arch: small, but with the cases that matter.
// libopenal1 needs libsndio.so.7.0, which is not a soname (the cache has libsndio.so.7), so the loader finds
// it in its own built-in system directories only. On armhf and i386, libvpx7 ships vfp/neon/libvpx.so.7 and
// libx264-164 i686/sse2/libx264.so.164; vpx-tools (vpxenc, vpxdec) and gstreamer1.0-plugins-ugly
// (gstreamer-1.0/libgstx264.so) need them, so the loader picks those copies. ffmpeg would do all of it too, at
// several times the size.
func CorpusPackages(arch string) []string {
	pkgs := []string{"curl", "ca-certificates", "openssl", "coreutils", "python3-minimal", "libc-bin", "libopenal1"}
	if arch == "armhf" || arch == "i386" {
		pkgs = append(pkgs, "libvpx7", "libx264-164", "vpx-tools", "gstreamer1.0-plugins-ugly")
	}
	return pkgs
}

// ErrNoTool is wrapped by the errors for a tool this machine lacks (mmdebstrap, qemu-user): a test skips.
var ErrNoTool = errors.New("not installed")

// Make returns a Debian 12 tree of arch holding packages and their dependencies, made on first use (under
// $SCRATCHPACK_DEBTREES, else the temporary directory). The tree is shared: a caller that changes it copies
// it first.
func Make(arch string, packages ...string) (string, error) {
	return makeTree(arch, "extract", packages)
}

// MakeInstalled is Make with the packages installed as a Debian image's are: mmdebstrap's minbase variant
// over this machine's own architecture (maintainer scripts run in the tree, the dpkg database is written;
// mmdebstrap keeps services from starting), plus packages.
func MakeInstalled(packages ...string) (string, error) { return makeTree("", "minbase", packages) }

func makeTree(arch, variant string, packages []string) (string, error) {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return "", fmt.Errorf("mmdebstrap is %w (apt-get install mmdebstrap)", ErrNoTool)
	}
	base := os.Getenv("SCRATCHPACK_DEBTREES")
	if base == "" {
		base = filepath.Join(os.TempDir(), "scratchpack-debtrees")
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	key := Suite + " " + arch + " " + strings.Join(packages, ",")
	name := arch
	if variant != "extract" {
		key, name = variant+" "+key, variant
	}
	sum := sha256.Sum256([]byte(key))
	dir := filepath.Join(base, name+"-"+hex.EncodeToString(sum[:6]))
	stamp := dir + ".done"

	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(stamp); err == nil {
		return dir, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	args := []string{"--variant=" + variant, "--include=" + strings.Join(packages, ","),
		"--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr", Suite, dir, Mirror()}
	if arch != "" {
		args = append([]string{"--arch=" + arch}, args...)
	}
	cmd := exec.Command("mmdebstrap", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, tail(out, 40))
	}
	if err := os.WriteFile(stamp, nil, 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

func tail(out []byte, lines int) string {
	l := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
