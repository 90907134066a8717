package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPlaceE2E places programs at DEST with SRC:DEST and checks them with the real loader inside the built
// root: each runs and prints what it prints on the host (its libraries, found through $ORIGIN, moved with
// it), `deps --root RESULT DEST` resolves completely inside the result and agrees with the loader there, and
// nothing of the program's host path is in the image.
func TestPlaceE2E(t *testing.T) {
	build := fixtures(t)
	prog := filepath.Join(build, "origin/real/bin/prog")
	dir := t.TempDir()
	script := filepath.Join(dir, "hello.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho placed script\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	hostOut := runOnHost(t, prog)
	for _, tc := range []struct {
		name, arg, dest, want string
		notIn                 string
	}{
		{"beside its libraries", prog + ":/app/bin/prog", "/app/bin/prog", hostOut, build},
		{"at the top", prog + ":/prog", "/prog", hostOut, build},
		{"through a symlink", filepath.Join(build, "origin/link/prog-braced") + ":/opt/x/bin/p", "/opt/x/bin/p", hostOut, build},
		{"a script", script + ":/usr/local/bin/hello", "/usr/local/bin/hello", "placed script\n", dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			buildOK(t, "--certs", "never", tc.arg, "-o", "dir:"+root)
			if _, err := os.Lstat(filepath.Join(root, tc.notIn)); err == nil {
				t.Errorf("%s is in the image: a placed program must not bring its host path", tc.notIn)
			}
			if got := mustRunInRoot(t, root, nil, tc.dest); got != tc.want {
				t.Errorf("%s in the built root printed %q, want %q", tc.dest, got, tc.want)
			}
			if strings.HasSuffix(tc.dest, "hello") {
				return // a script: the loader lists its interpreter, checked by running it
			}
			code, stdout, stderr := scratchpack(t, "deps", "--root", root, "--format", "list", tc.dest)
			if code != 0 {
				t.Fatalf("deps --root RESULT %s: exit %d: %s", tc.dest, code, stderr)
			}
			trace := mustRunInRoot(t, root, []string{"LD_TRACE_LOADED_OBJECTS=1"}, tc.dest)
			want := tracePaths(trace)
			slices.Sort(want)
			if diff := cmp.Diff(slices.Compact(want), strings.Fields(stdout)); diff != "" {
				t.Errorf("deps inside the result differs from the loader there (-loader +deps):\n%s", diff)
			}
		})
	}

	t.Run("entrypoint is DEST", func(t *testing.T) {
		layout := filepath.Join(t.TempDir(), "oci")
		buildDigest(t, "--certs", "never", prog+":/app/bin/prog", "-o", "oci:"+layout+":v1")
		cfg := ociImage(t, layout, "v1")
		cf, err := cfg.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"/app/bin/prog"}, cf.Config.Entrypoint); diff != "" {
			t.Errorf("entrypoint (-want +got):\n%s", diff)
		}
		// The history names image paths, never the host path the program came from.
		if len(cf.History) != 1 || cf.History[0].CreatedBy != "scratchpack build /app/bin/prog" || strings.Contains(cf.History[0].CreatedBy, build) {
			t.Errorf("history %+v, want one entry naming /app/bin/prog", cf.History)
		}
		if !slices.Contains(cf.Config.Env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") {
			t.Errorf("env %q has no default PATH", cf.Config.Env)
		}
	})

	t.Run("add of an ELF file: once, at DEST", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		buildOK(t, "--certs", "never", "/bin/true", "--add", prog+":/svc", "-o", "dir:"+root)
		if _, err := os.Lstat(filepath.Join(root, prog)); err == nil {
			t.Errorf("--add %s:/svc also copied it to its host path", prog)
		}
		if got := mustRunInRoot(t, root, nil, "/svc"); got != hostOut {
			t.Errorf("/svc printed %q, want %q", got, hostOut)
		}
	})

	t.Run("same digest from any checkout directory", func(t *testing.T) {
		var digests []string
		for _, d := range []string{"a/checkout", "another/place/entirely"} {
			copyDir := filepath.Join(t.TempDir(), d)
			if err := os.MkdirAll(copyDir, 0o755); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(build, "hello"))
			if err != nil {
				t.Fatal(err)
			}
			hello := filepath.Join(copyDir, "hello")
			if err := os.WriteFile(hello, data, 0o755); err != nil {
				t.Fatal(err)
			}
			digests = append(digests, buildDigest(t, "--certs", "never", hello+":/hello", "-o", "oci:"+filepath.Join(copyDir, "oci")))
		}
		if digests[0] != digests[1] {
			t.Errorf("the same program placed at /hello from two directories gave %s and %s", digests[0], digests[1])
		}
	})

	t.Run("usage", func(t *testing.T) {
		for _, arg := range []string{prog + ":relative/dest", ":/x"} {
			code, _, stderr := scratchpack(t, "build", arg, "-o", "dir:"+filepath.Join(t.TempDir(), "r"))
			if code != 2 || !strings.Contains(stderr, arg) {
				t.Errorf("build %q: exit %d, stderr %q; want a usage error naming it", arg, code, stderr)
			}
		}
	})
}

// TestVersionMismatchRefused: a program whose loader would map a library lacking a symbol version it needs
// (libtree's scenario 06) is reported by deps (exit 1) and refused by build, naming the version, the
// library and who needs it; nothing is written.
func TestVersionMismatchRefused(t *testing.T) {
	prog := filepath.Join(fixtures(t), "version", "prog-v2")
	code, _, stderr := scratchpack(t, "deps", prog)
	if code != 1 || !strings.Contains(stderr, "version `VER_2' not found in libx.so") || !strings.Contains(stderr, "required by "+prog) {
		t.Errorf("deps: exit %d, stderr %q; want 1 naming VER_2, libx.so and the program", code, stderr)
	}
	out := filepath.Join(t.TempDir(), "root")
	code, _, stderr = scratchpack(t, "build", "--certs", "never", prog, "-o", "dir:"+out)
	if code == 0 || !strings.Contains(stderr, "version `VER_2' not found") {
		t.Errorf("build: exit %d, stderr %q; want a refusal naming VER_2", code, stderr)
	}
	if _, err := os.Lstat(out); err == nil {
		t.Error("a refused build wrote its output")
	}
	if code, _, stderr := scratchpack(t, "deps", filepath.Join(fixtures(t), "version", "prog-ok")); code != 0 {
		t.Errorf("deps prog-ok: exit %d, %s", code, stderr)
	}
}
