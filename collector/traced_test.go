package collector

import (
	"strings"
	"testing"

	"github.com/scratchpack/scratchpack/internal/trace"
)

// TestTracedSecretsLeftOut: what a traced workload read among credentials (shadow, SSH keys, a home's
// hidden files) is not packed and is named in a note; the rest of what it used is.
func TestTracedSecretsLeftOut(t *testing.T) {
	ex := DefaultTraceExclude("")
	for p, want := range map[string]bool{
		"/etc/shadow": true, "/etc/gshadow": true, "/etc/ssh/ssh_host_ed25519_key": true, "/etc/sudoers.d/ci": true,
		"/root/.netrc": true, "/root/.docker/config.json": true, "/home/ci/.ssh/id_ed25519": true, "/home/ci/.config/gh/hosts.yml": true,
		"/srv/app/.aws/credentials": true, "/opt/x/.git-credentials": true,
		"/etc/passwd": false, "/etc/ssh/ssh_config": false, "/home/ci/build/bin/svc": false, "/root/project/lib.so": false,
		"/usr/lib/x86_64-linux-gnu/libc.so.6": false, "/etc/shadowsocks.json": false,
	} {
		if got := ex.secret(p); got != want {
			t.Errorf("secret(%q) = %v, want %v", p, got, want)
		}
	}
	p, err := NewPlanner(hostRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	notes, err := p.addTraced([]trace.Access{
		{Path: "/etc/shadow", Op: trace.OpOpen, PID: 1}, {Path: "/etc/passwd", Op: trace.OpOpen, PID: 1},
		{Path: "/etc/ssh/ssh_config", Op: trace.OpOpen, PID: 1}, {Path: "/etc/ld.so.cache", Op: trace.OpOpen, PID: 1},
	}, "test", ex)
	if err != nil {
		t.Fatal(err)
	}
	if p.Tree().Get("/etc/shadow") != nil {
		t.Error("/etc/shadow, read by the workload, is in the image")
	}
	if p.Tree().Get("/etc/ssh/ssh_config") == nil {
		t.Error("/etc/ssh/ssh_config, read by the workload, is not in the image")
	}
	// What the rules generate is not taken from the root: the accounts, the loader's cache.
	for _, f := range []string{"/etc/passwd", "/etc/ld.so.cache"} {
		if p.Tree().Get(f) != nil {
			t.Errorf("%s, read by the workload, was taken from the root", f)
		}
	}
	if !strings.Contains(strings.Join(notes, "\n"), "kept the image's own /etc/ld.so.cache, /etc/passwd") {
		t.Errorf("notes %q do not say the generated files were kept", notes)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "left out what looks like credentials: /etc/shadow") {
		t.Errorf("notes %q do not name what was left out", notes)
	}
}
