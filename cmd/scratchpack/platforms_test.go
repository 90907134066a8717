package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitPlatform(t *testing.T) {
	for _, c := range []struct {
		arg, platform, value string
		ok                   bool
	}{
		{"linux/arm64=/srv/arm64", "linux/arm64", "/srv/arm64", true},
		{"linux/arm/v7=oci:img:tag", "linux/arm/v7", "oci:img:tag", true},
		{"linux/386=bin/386/svc:/svc", "linux/386", "bin/386/svc:/svc", true},
		{"linux/arm64=a=b", "linux/arm64", "a=b", true},
		{"./linux/arm64=x", "", "./linux/arm64=x", false},
		{"/srv/linux/arm64=x", "", "/srv/linux/arm64=x", false},
		{"docker://host/linux/arm64=x", "", "docker://host/linux/arm64=x", false},
		{"rootdir", "", "rootdir", false},
	} {
		p, value, ok, err := splitPlatform(c.arg)
		if err != nil || ok != c.ok || value != c.value || (ok && p.String() != c.platform) {
			t.Errorf("splitPlatform(%q) = %v, %q, %v, %v; want %s, %q, %v", c.arg, p, value, ok, err, c.platform, c.value, c.ok)
		}
	}
}

// The --root and --add forms are checked before any root is opened, with errors that say what to write.
func TestPlatformFlagErrors(t *testing.T) {
	dir := t.TempDir()
	svc := filepath.Join(dir, "svc")
	if err := os.WriteFile(svc, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := "oci:" + filepath.Join(dir, "oci")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--root", "/", "--root", "linux/arm64=/srv", "/usr/bin/true"}, "--root / has no platform, but --root linux/arm64=/srv has: give every root its platform"},
		{[]string{"--root", "/", "--root", "/srv", "/usr/bin/true"}, "--root / and --root /srv: one root, or one per platform"},
		{[]string{"--root", "linux/arm64=/a", "--root", "linux/arm64=/b", "/usr/bin/true"}, "two roots for linux/arm64 (/a and /b)"},
		{[]string{"--root", "linux/arm64=", "/usr/bin/true"}, "no root after the platform"},
		{[]string{"--root", "linux/amd64=/", "--platform", "linux/s390x", "/usr/bin/true"}, "--platform linux/s390x: no --root for it (the roots are for linux/amd64)"},
		{[]string{"--root", "linux/amd64=/", "--add", "linux/arm64=" + svc + ":/svc", "/usr/bin/true"}, "--add linux/arm64=" + svc + ": no --root for linux/arm64"},
		{[]string{"--add", "linux/arm64=" + svc + ":/svc", "/usr/bin/true"}, "the build's platform is not known before it runs: give --platform"},
	} {
		code, _, stderr := scratchpack(t, append(append([]string{"build"}, c.args...), "-o", out)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("build %q: exit %d, %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "oci")); err == nil {
		t.Error("a refused build wrote its output")
	}
}

// --platform picks one platform root; with a plain root, it also picks the --add lines of that platform.
func TestPlatformPicksOne(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "marker")
	if err := os.WriteFile(marker, []byte("amd64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "tree")
	buildOK(t, "--certs", "never", "--platform", "linux/amd64", "--add", "linux/amd64="+marker+":/etc/marker",
		"--add", "linux/arm64="+marker+":/etc/other", "/usr/bin/true", "-o", "dir:"+tree)
	if _, err := os.Stat(filepath.Join(tree, "etc/marker")); err != nil {
		t.Errorf("the linux/amd64 add is missing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tree, "etc/other")); err == nil {
		t.Error("the linux/arm64 add went into a linux/amd64 build")
	}
	tree2 := filepath.Join(dir, "tree2")
	buildOK(t, "--certs", "never", "--root", "linux/amd64=/", "--root", "linux/arm64=/nonexistent", "--platform", "linux/amd64",
		"/usr/bin/true", "-o", "dir:"+tree2)
	if _, err := os.Stat(filepath.Join(tree2, "usr/bin/true")); err != nil {
		t.Errorf("--platform linux/amd64 did not build the amd64 root: %v", err)
	}
}
