package main

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTraceEnvironmentStdinUser runs a traced workload through the real binary: it gets the image's
// environment plus --trace-env (which the image does not get), this command's standard input, and runs as
// --trace-user; what it reads of the root's accounts and loader cache does not replace the image's own.
func TestTraceEnvironmentStdinUser(t *testing.T) {
	needRoot(t)
	needTools(t, "id", "cat")
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody on this machine")
	}
	out := filepath.Join(t.TempDir(), "layout")
	script := `echo FOO=$FOO; echo IMG=$IMG; echo PATH=$PATH; echo UID=$(id -u); cat; id -un >/dev/null; getent passwd root >/dev/null; true`
	cmd := exec.Command(binary(t), "build", "/bin/sh", "-o", "oci:"+out+":t", "--env", "IMG=from-image", "--env", "PATH=/bin:/usr/bin",
		"--trace-env", "FOO=only-traced", "--trace-user", "nobody", "--trace", "--", "/bin/sh", "-c", script)
	cmd.Stdin = strings.NewReader("from-stdin\n")
	cmd.Env = append(os.Environ(), "FOO=from-caller", "LEAK=caller")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"FOO=only-traced\n", "IMG=from-image\n", "PATH=/bin:/usr/bin\n", "UID=" + nobody.Uid + "\n", "from-stdin\n"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the workload's output lacks %q:\n%s", want, stderr.String())
		}
	}
	if !strings.Contains(stderr.String(), "kept the image's own") {
		t.Errorf("the build does not say it kept its generated files:\n%s", stderr.String())
	}
	cfg, err := ociImage(t, out, "t").ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(cfg.Config.Env, func(kv string) bool { return strings.HasPrefix(kv, "FOO=") || strings.HasPrefix(kv, "LEAK=") }) {
		t.Errorf("the image's environment got a trace-only or caller variable: %q", cfg.Config.Env)
	}

	// The caller's environment only on request.
	inherit := exec.Command(binary(t), "build", "/bin/sh", "-o", "dir:"+filepath.Join(t.TempDir(), "r"), "--trace-inherit-env",
		"--trace", "--", "/bin/sh", "-c", "echo LEAK=$LEAK")
	inherit.Env = append(os.Environ(), "LEAK=caller")
	b, err := inherit.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "LEAK=caller") {
		t.Errorf("--trace-inherit-env: %v\n%s", err, b)
	}

	// The generated accounts stay: a dir output shows them.
	dir := filepath.Join(t.TempDir(), "r")
	run := exec.Command(binary(t), "build", "/bin/sh", "-o", "dir:"+dir, "--trace", "--", "/bin/sh", "-c", "getent passwd root; cat /etc/ld.so.cache >/dev/null")
	if b, err := run.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	host, _ := os.ReadFile("/etc/passwd")
	img, err := os.ReadFile(filepath.Join(dir, "etc/passwd"))
	if err != nil || bytes.Equal(img, host) {
		t.Errorf("the image's /etc/passwd is the host's (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/ld.so.cache")); err == nil {
		t.Error("the trace added the host's /etc/ld.so.cache")
	}

	// A user the root lacks is an error naming it.
	bad := exec.Command(binary(t), "build", "/bin/sh", "-o", "dir:"+filepath.Join(t.TempDir(), "x"), "--trace-user", "no-such-user", "--trace", "--", "/bin/true")
	if b, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(b), `no user "no-such-user"`) {
		t.Errorf("--trace-user no-such-user: %v\n%s", err, b)
	}
}
